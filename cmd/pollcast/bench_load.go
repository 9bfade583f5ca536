package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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
// given (so that results are visible whatever the poll's visibility).
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

// wsWorker votes over one WebSocket at a time until sendCtx ends,
// reconnecting when a connection fails.
func (b *bench) wsWorker(ctx, sendCtx context.Context) {
	for sendCtx.Err() == nil {
		conn, err := b.dialLive(ctx)
		if err == nil {
			v := &wsVoter{b: b, conn: conn, window: make(chan struct{}, b.cfg.pipeline),
				pending: map[string]time.Time{}, readDone: make(chan struct{})}
			err = v.run(ctx, sendCtx)
		}
		if err == nil {
			return
		}
		b.st.connError(err)
		select {
		case <-sendCtx.Done():
		case <-time.After(reconnectPause):
		}
	}
}

// wsVoter pipelines votes over one WebSocket: up to cap(window) votes
// wait for their answers, matched by ref.
type wsVoter struct {
	b        *bench
	conn     *websocket.Conn
	window   chan struct{} // a slot per vote waiting for its answer
	readDone chan struct{} // closed when the reader ended
	seq      int

	mu      sync.Mutex
	pending map[string]time.Time // ref → when the vote was sent
}

var errConnLost = errors.New("connection lost")

// run votes until sendCtx ends, then waits for the answers in flight and
// closes the connection. An error means the connection failed early.
func (v *wsVoter) run(ctx, sendCtx context.Context) error {
	defer v.conn.CloseNow()
	go v.read(ctx)
	err := v.send(ctx, sendCtx)
	v.drain(ctx)
	_ = v.conn.Close(websocket.StatusNormalClosure, "bench done")
	<-v.readDone
	v.failPending()
	return err
}

// send writes votes while the window has room, until sendCtx ends.
func (v *wsVoter) send(ctx, sendCtx context.Context) error {
	opt, _ := json.Marshal(v.b.cfg.option)
	for {
		select {
		case v.window <- struct{}{}:
		case <-sendCtx.Done():
			return nil
		case <-v.readDone:
			return errConnLost
		}
		if !v.b.pace.wait(sendCtx) {
			<-v.window
			return nil
		}
		v.seq++
		ref := strconv.Itoa(v.seq)
		msg := append(make([]byte, 0, 128), `{"type":"vote","ref":"`...)
		msg = append(append(append(msg, ref...), `","options":[`...), opt...)
		msg = append(append(append(msg, `],"voter":"`...), v.b.voter()...), `"}`...)
		v.mu.Lock()
		v.pending[ref] = time.Now()
		v.mu.Unlock()
		v.b.st.sent.Add(1)
		wctx, cancel := context.WithTimeout(ctx, wsWriteTimeout)
		err := v.conn.Write(wctx, websocket.MessageText, msg)
		cancel()
		if err != nil {
			return fmt.Errorf("write: %w", err)
		}
	}
}

// read matches answers to votes until the connection ends.
func (v *wsVoter) read(ctx context.Context) {
	defer close(v.readDone)
	for {
		_, data, err := v.conn.Read(ctx)
		if err != nil {
			return
		}
		var m struct {
			Type   string `json:"type"`
			Ref    string `json:"ref"`
			Status int    `json:"status"`
			Code   string `json:"code"`
		}
		if json.Unmarshal(data, &m) != nil || m.Type != "vote_result" {
			continue // results broadcasts
		}
		v.mu.Lock()
		sent, ok := v.pending[m.Ref]
		delete(v.pending, m.Ref)
		v.mu.Unlock()
		if !ok {
			continue
		}
		if m.Status == http.StatusAccepted {
			v.b.st.lat.Record(time.Since(sent))
			v.b.st.ok.Add(1)
		} else {
			v.b.st.fail(statusCode(m.Status, m.Code), 1)
		}
		<-v.window
	}
}

// drain waits until every vote sent was answered, the connection ended,
// or wsDrainTimeout passed.
func (v *wsVoter) drain(ctx context.Context) {
	t := time.NewTimer(wsDrainTimeout)
	defer t.Stop()
	for range cap(v.window) {
		select {
		case v.window <- struct{}{}:
		case <-v.readDone:
			return
		case <-t.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// failPending counts the votes that never got an answer: their outcome is
// unknown.
func (v *wsVoter) failPending() {
	v.mu.Lock()
	n := len(v.pending)
	clear(v.pending)
	v.mu.Unlock()
	if n > 0 {
		v.b.st.fail(codeTransport, int64(n))
	}
}
