package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// The http, ws and batch scenarios: --concurrency senders vote for
// --duration, then wait for the answers of the votes in flight. Requests
// in flight are never cancelled at the end of the run, so that every vote
// sent has a known outcome for the exactness check.

const (
	wsDialTimeout  = 10 * time.Second
	wsWriteTimeout = 10 * time.Second
	wsDrainTimeout = 10 * time.Second // for the answers to the votes in flight
	reconnectPause = 100 * time.Millisecond
)

// runLoad runs the http, ws or batch scenario and returns how long it took.
func (b *bench) runLoad(ctx context.Context) (time.Duration, error) {
	worker, ok := map[string]func(ctx, sendCtx context.Context){
		"http": b.httpWorker, "ws": b.wsWorker, "batch": b.batchWorker,
	}[b.cfg.scenario]
	if !ok {
		return 0, fmt.Errorf("no load scenario %q", b.cfg.scenario)
	}
	sendCtx, cancel := context.WithTimeout(ctx, b.cfg.duration)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { b.pace.run(sendCtx) })
	for range b.cfg.concurrency {
		wg.Go(func() { worker(ctx, sendCtx) })
	}
	wg.Wait()
	return time.Since(b.start), nil
}

// votePrefix returns the start of a vote's JSON, up to the voter id's
// opening quote; poll adds the poll_id field (batch).
func (b *bench) votePrefix(poll bool) []byte {
	opt, _ := json.Marshal(b.cfg.option)
	var buf bytes.Buffer
	buf.WriteString("{")
	if poll {
		id, _ := json.Marshal(b.pollID)
		fmt.Fprintf(&buf, `"poll_id":%s,`, id)
	}
	fmt.Fprintf(&buf, `"options":[%s],"voter":"`, opt)
	return buf.Bytes()
}

// appendVoter appends the voter id of the n-th vote (voterSeq's n) to
// buf: the id bench.voter returns, without allocating.
func (b *bench) appendVoter(buf []byte, n uint64) []byte {
	if b.cfg.voters > 0 {
		n %= uint64(b.cfg.voters)
	}
	buf = append(append(buf, b.runID...), '-')
	return strconv.AppendUint(buf, n, 10)
}

// appendVote appends a vote's JSON with a new voter id to buf.
func (b *bench) appendVote(buf, prefix []byte) []byte {
	buf = append(buf, prefix...)
	buf = append(buf, b.voter()...) // ASCII letters, digits and dashes: nothing to escape
	return append(buf, `"}`...)
}

func (b *bench) votesURL() string {
	return b.net.base + "/v1/polls/" + url.PathEscape(b.pollID) + "/votes"
}

// httpWorker sends single votes, one at a time, until sendCtx ends.
func (b *bench) httpWorker(ctx, sendCtx context.Context) {
	target, prefix := b.votesURL(), b.votePrefix(false)
	for b.pace.wait(sendCtx) {
		b.voteHTTP(ctx, target, prefix)
	}
}

// voteHTTP sends one vote and counts its outcome; it reports whether the
// vote was accepted.
func (b *bench) voteHTTP(ctx context.Context, target string, prefix []byte) bool {
	body := b.appendVote(make([]byte, 0, len(prefix)+32), prefix)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		b.st.fail(codeTransport, 1)
		return false
	}
	req.Header.Set("Content-Type", "application/json")
	b.st.sent.Add(1)
	t0 := time.Now()
	resp, err := b.net.hc.Do(req)
	if err != nil {
		b.st.fail(codeTransport, 1)
		return false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		b.st.fail(problemCode(resp), 1)
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // so the connection is reused
		return false
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // a 202 is the outcome: the body adds nothing
	b.st.lat.Record(time.Since(t0))
	b.st.ok.Add(1)
	return true
}

// batchWorker sends batches of --batch-size votes until sendCtx ends.
func (b *bench) batchWorker(ctx, sendCtx context.Context) {
	target, prefix := b.net.base+"/v1/votes/batch", b.votePrefix(true)
	for b.pace.wait(sendCtx) {
		b.voteBatch(ctx, target, prefix)
	}
}

// voteBatch sends one batch and counts the outcome of each of its votes.
func (b *bench) voteBatch(ctx context.Context, target string, prefix []byte) {
	n := b.cfg.batchSize
	body := make([]byte, 0, n*(len(prefix)+32)+16)
	body = append(body, `{"votes":[`...)
	for i := range n {
		if i > 0 {
			body = append(body, ',')
		}
		body = b.appendVote(body, prefix)
	}
	body = append(body, "]}"...)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		b.st.fail(codeTransport, int64(n))
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+b.cfg.key)
	b.st.sent.Add(int64(n))
	t0 := time.Now()
	resp, err := b.net.hc.Do(req)
	if err != nil {
		b.st.fail(codeTransport, int64(n))
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.st.fail(problemCode(resp), int64(n))
		return
	}
	var out struct {
		Results []struct {
			Status int    `json:"status"`
			Code   string `json:"code"`
		} `json:"results"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || len(out.Results) != n {
		b.st.fail(codeTransport, int64(n)) // an answer we cannot read: outcome unknown
		return
	}
	b.st.lat.Record(time.Since(t0))
	for _, r := range out.Results {
		if r.Status == http.StatusAccepted {
			b.st.ok.Add(1)
		} else {
			b.st.fail(statusCode(r.Status, r.Code), 1)
		}
	}
}

// liveURL returns the poll's live endpoint: WebSocket or, for sse, the
// event stream.
func (b *bench) liveURL(sse bool) string {
	if sse {
		return b.net.base + "/v1/polls/" + url.PathEscape(b.pollID) + "/events"
	}
	return b.net.base + "/v1/polls/" + url.PathEscape(b.pollID) + "/live"
}

// dialLive opens a live WebSocket to the poll, as its owner when a key was
// given (so that results are visible whatever the poll's visibility): a
// viewer's. The ws scenario's voters use dialVoter (bench_ws.go).
func (b *bench) dialLive(ctx context.Context) (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, wsDialTimeout)
	defer cancel()
	opts := &websocket.DialOptions{HTTPClient: b.net.ws, CompressionMode: websocket.CompressionDisabled}
	if b.cfg.key != "" {
		opts.HTTPHeader = http.Header{"Authorization": {"Bearer " + b.cfg.key}}
	}
	c, resp, err := websocket.Dial(ctx, b.liveURL(false), opts)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("live: %s: %w", resp.Status, err)
		}
		return nil, fmt.Errorf("live: %w", err)
	}
	c.SetReadLimit(1 << 20)
	return c, nil
}
