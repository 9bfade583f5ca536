package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// The http, ws and batch scenarios: Config.Concurrency senders vote for
// Config.Duration, then wait for the answers of the votes in flight.
// Requests in flight are never cancelled at the end of the run, so that
// every vote sent has a known outcome for the exactness check.

// wsDialTimeout bounds the opening of a WebSocket (ws voters, viewers).
const wsDialTimeout = 10 * time.Second

// runLoad runs the http, ws or batch scenario and returns how long it took.
func (g *Generator) runLoad(ctx context.Context) (time.Duration, error) {
	worker, ok := map[string]func(ctx, sendCtx context.Context){
		"http": g.httpWorker, "ws": g.wsWorker, "batch": g.batchWorker,
	}[g.cfg.Scenario]
	if !ok {
		return 0, fmt.Errorf("no load scenario %q", g.cfg.Scenario)
	}
	sendCtx, cancel := context.WithTimeout(ctx, g.cfg.Duration)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { g.pace.run(sendCtx) })
	for range g.cfg.Concurrency {
		wg.Go(func() { worker(ctx, sendCtx) })
	}
	wg.Wait()
	return time.Since(g.start), nil
}

// votePrefix returns the start of a vote's JSON, up to the voter id's
// opening quote; poll adds the poll_id field (batch).
func (g *Generator) votePrefix(poll bool) []byte {
	opt, _ := json.Marshal(g.cfg.Option)
	var buf bytes.Buffer
	buf.WriteString("{")
	if poll {
		id, _ := json.Marshal(g.pollID)
		fmt.Fprintf(&buf, `"poll_id":%s,`, id)
	}
	fmt.Fprintf(&buf, `"options":[%s],"voter":"`, opt)
	return buf.Bytes()
}

// appendVoter appends the voter id of the n-th vote (voterSeq's n) to
// buf: the id Generator.voter returns, without allocating.
func (g *Generator) appendVoter(buf []byte, n uint64) []byte {
	if g.cfg.Voters > 0 {
		n %= uint64(g.cfg.Voters)
	}
	buf = append(append(buf, g.runID...), '-')
	return strconv.AppendUint(buf, n, 10)
}

// appendVote appends a vote's JSON with a new voter id to buf.
func (g *Generator) appendVote(buf, prefix []byte) []byte {
	buf = append(buf, prefix...)
	buf = append(buf, g.voter()...) // ASCII letters, digits and dashes: nothing to escape
	return append(buf, `"}`...)
}

func (g *Generator) votesURL() string {
	return g.net.base + "/v1/polls/" + url.PathEscape(g.pollID) + "/votes"
}

// liveURL returns the poll's live endpoint: WebSocket or, for sse, the
// event stream.
func (g *Generator) liveURL(sse bool) string {
	if sse {
		return g.net.base + "/v1/polls/" + url.PathEscape(g.pollID) + "/events"
	}
	return g.net.base + "/v1/polls/" + url.PathEscape(g.pollID) + "/live"
}
