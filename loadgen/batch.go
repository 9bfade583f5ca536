package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// batchWorker sends batches of Config.BatchSize votes until sendCtx ends.
func (g *Generator) batchWorker(ctx, sendCtx context.Context) {
	target, prefix := g.net.base+"/v1/votes/batch", g.votePrefix(true)
	for g.pace.wait(sendCtx) {
		g.voteBatch(ctx, target, prefix)
	}
}

// voteBatch sends one batch and counts the outcome of each of its votes.
func (g *Generator) voteBatch(ctx context.Context, target string, prefix []byte) {
	n := g.cfg.BatchSize
	body := make([]byte, 0, n*(len(prefix)+32)+16)
	body = append(body, `{"votes":[`...)
	for i := range n {
		if i > 0 {
			body = append(body, ',')
		}
		body = g.appendVote(body, prefix)
	}
	body = append(body, "]}"...)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		g.st.fail(codeTransport, int64(n))
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+g.cfg.Key)
	g.st.sent.Add(int64(n))
	t0 := time.Now()
	resp, err := g.net.hc.Do(req)
	if err != nil {
		g.st.fail(codeTransport, int64(n))
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		g.st.fail(problemCode(resp), int64(n))
		return
	}
	var out struct {
		Results []struct {
			Status int    `json:"status"`
			Code   string `json:"code"`
		} `json:"results"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || len(out.Results) != n {
		g.st.fail(codeTransport, int64(n)) // an answer we cannot read: outcome unknown
		return
	}
	g.st.lat.Record(time.Since(t0))
	for _, r := range out.Results {
		if r.Status == http.StatusAccepted {
			g.st.ok.Add(1)
		} else {
			g.st.fail(statusCode(r.Status, r.Code), 1)
		}
	}
}
