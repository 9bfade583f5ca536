package loadgen

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"time"
)

// httpWorker sends single votes, one at a time, until sendCtx ends.
func (g *Generator) httpWorker(ctx, sendCtx context.Context) {
	target, prefix := g.votesURL(), g.votePrefix(false)
	for g.pace.wait(sendCtx) {
		g.voteHTTP(ctx, target, prefix)
	}
}

// voteHTTP sends one vote and counts its outcome; it reports whether the
// vote was accepted.
func (g *Generator) voteHTTP(ctx context.Context, target string, prefix []byte) bool {
	body := g.appendVote(make([]byte, 0, len(prefix)+32), prefix)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		g.st.fail(codeTransport, 1)
		return false
	}
	req.Header.Set("Content-Type", "application/json")
	g.st.sent.Add(1)
	t0 := time.Now()
	resp, err := g.net.hc.Do(req)
	if err != nil {
		g.st.fail(codeTransport, 1)
		return false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		g.st.fail(problemCode(resp), 1)
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // so the connection is reused
		return false
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // a 202 is the outcome: the body adds nothing
	g.st.lat.Record(time.Since(t0))
	g.st.ok.Add(1)
	return true
}
