package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// The viewers scenario: --viewers live connections on one poll while votes
// arrive over HTTP. The k-th vote answered 202 (in order of arrival) is
// taken to be counted in any results message whose total reaches k: a
// viewer's latency for it is when the viewer got that message minus when
// the 202 arrived, clamped at zero (the viewer may see a vote counted
// before its 202 reached the voter).

const (
	viewerDialParallelism = 64               // viewers connecting at once
	viewerFirstTimeout    = 30 * time.Second // to connect and get the first results
	viewerCatchUpTimeout  = 10 * time.Second // after the votes, for viewers to see the final total
)

// viewerSet is the audience of the viewers scenario.
type viewerSet struct {
	b       *bench
	base    int64 // the poll's total before the run
	arr     *arrivals
	lat     *histogram
	viewers []viewerState

	connected, failed, dropped atomic.Int64
	closing                    atomic.Bool // the run is over: connections ending now were not dropped
	connectTime                time.Duration
	caughtUp                   int64
}

// viewerState is what one viewer has seen.
type viewerState struct {
	seen atomic.Int64 // votes of the run counted in the newest results it got
	live atomic.Bool  // connected and not dropped
}

// viewerSummary reports on the viewers.
type viewerSummary struct {
	Wanted    int     `json:"wanted"`
	Live      string  `json:"live"` // ws or sse
	Connected int64   `json:"connected"`
	Failed    int64   `json:"failed"`
	Dropped   int64   `json:"dropped"`
	CaughtUp  int64   `json:"caught_up"` // viewers that saw the final total
	ConnectS  float64 `json:"connect_s"` // time to connect them all
}

// arrivals keeps the time of each 202, in order of arrival, in
// nanoseconds since start. Appends and reads may run concurrently: a
// reader only reads below the length it took under the lock, and those
// elements never change.
type arrivals struct {
	start time.Time
	mu    sync.Mutex
	times []int64
}

func (a *arrivals) now() int64 { return int64(time.Since(a.start)) }

func (a *arrivals) add() {
	a.mu.Lock()
	a.times = append(a.times, a.now()) // under the lock: times ascend
	a.mu.Unlock()
}

func (a *arrivals) snapshot() []int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.times
}

// newViewerSet returns the audience of a poll whose total was before.
func newViewerSet(b *bench, before int64) *viewerSet {
	capacity := 1024
	if b.cfg.rate > 0 {
		capacity = int(b.cfg.rate*b.cfg.duration.Seconds()*1.1) + 1024
	}
	return &viewerSet{b: b, base: before, lat: newHistogram(), viewers: make([]viewerState, b.cfg.viewers),
		arr: &arrivals{start: time.Now(), times: make([]int64, 0, capacity)}}
}

func (vs *viewerSet) summary() *viewerSummary {
	return &viewerSummary{Wanted: vs.b.cfg.viewers, Live: vs.b.cfg.live, Connected: vs.connected.Load(),
		Failed: vs.failed.Load(), Dropped: vs.dropped.Load(), CaughtUp: vs.caughtUp, ConnectS: vs.connectTime.Seconds()}
}

// runViewers connects the viewers, votes over HTTP for --duration, waits
// for the viewers to see the final total, and returns how long the votes
// took.
func (b *bench) runViewers(ctx context.Context) (time.Duration, error) {
	vs := b.viewers
	vctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		vs.closing.Store(true)
		stop()
		wg.Wait()
	}()
	t0 := time.Now()
	vs.connectAll(vctx, &wg)
	vs.connectTime = time.Since(t0)
	fmt.Fprintf(b.stderr, "bench: %d of %d viewers connected in %.1fs; voting for %v\n",
		vs.connected.Load(), b.cfg.viewers, vs.connectTime.Seconds(), b.cfg.duration)
	if vs.connected.Load() == 0 {
		_, first := b.st.connErrorCounts()
		return 0, fmt.Errorf("no viewer could connect: %s", first)
	}
	elapsed := b.voteForViewers(ctx)
	vs.awaitCaughtUp(ctx, b.st.ok.Load())
	return elapsed, nil
}

// voteForViewers sends single votes over HTTP for --duration, noting when
// each 202 arrives.
func (b *bench) voteForViewers(ctx context.Context) time.Duration {
	sendCtx, cancel := context.WithTimeout(ctx, b.cfg.duration)
	defer cancel()
	start := time.Now()
	target, prefix := b.votesURL(), b.votePrefix(false)
	var wg sync.WaitGroup
	wg.Go(func() { b.pace.run(sendCtx) })
	for range b.cfg.concurrency {
		wg.Go(func() {
			for b.pace.wait(sendCtx) {
				if b.voteHTTP(ctx, target, prefix) {
					b.viewers.arr.add()
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}

// connectAll starts every viewer, viewerDialParallelism at a time, and
// returns once each is connected or failed. The viewers run in wg until
// ctx ends.
func (vs *viewerSet) connectAll(ctx context.Context, wg *sync.WaitGroup) {
	sem := make(chan struct{}, viewerDialParallelism)
	var ready sync.WaitGroup
	for i := range vs.viewers {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			ready.Wait()
			return
		}
		ready.Add(1)
		wg.Go(func() { vs.watch(ctx, i, func() { <-sem; ready.Done() }) })
	}
	ready.Wait()
}

// watch is viewer i: it connects, calls ready once it got its first
// results (or failed), and follows the results until ctx ends.
func (vs *viewerSet) watch(ctx context.Context, i int, ready func()) {
	ready = sync.OnceFunc(ready)
	defer ready()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	slow := time.AfterFunc(viewerFirstTimeout, cancel)
	feed, err := vs.open(ctx)
	if err != nil {
		vs.fail(err)
		return
	}
	defer feed.close()
	st := &vs.viewers[i]
	for first := true; ; {
		data, err := feed.next(ctx)
		recv := vs.arr.now()
		switch {
		case err != nil && first:
			vs.fail(fmt.Errorf("first results: %w", err))
			return
		case err != nil:
			st.live.Store(false)
			if !vs.closing.Load() {
				vs.dropped.Add(1)
				vs.b.st.connError(fmt.Errorf("viewer dropped: %w", err))
			}
			return
		}
		typ, total := liveMessage(data)
		switch {
		case typ == "hidden":
			vs.fail(errors.New("results are hidden from viewers of this poll (give --key of its owner)"))
			return
		case typ != "results":
			continue
		case first:
			slow.Stop()
			first = false
			st.seen.Store(total - vs.base)
			st.live.Store(true)
			vs.connected.Add(1)
			ready()
		default:
			vs.observe(st, total-vs.base, recv)
		}
	}
}

func (vs *viewerSet) fail(err error) {
	vs.failed.Add(1)
	vs.b.st.connError(err)
}

// observe records the latencies of the votes a viewer sees counted for
// the first time in results received at recv.
func (vs *viewerSet) observe(st *viewerState, counted, recv int64) {
	seen := st.seen.Load()
	if counted <= seen {
		return
	}
	times := vs.arr.snapshot()
	known := min(counted, int64(len(times)))
	if known > seen {
		vs.lat.RecordSince(recv, times[seen:known])
	}
	if early := counted - max(known, seen); early > 0 {
		vs.lat.add(0, early, 0, 0) // counted before their 202 arrived
	}
	st.seen.Store(counted)
}

// liveMessage returns the type of a live message and its total. Results
// messages, ten a second for each viewer, are read without a JSON decoder
// when they look as the server writes them (type first); anything else is
// decoded.
func liveMessage(data []byte) (string, int64) {
	if rest, ok := bytes.CutPrefix(data, []byte(`{"type":"results",`)); ok {
		if _, num, ok := bytes.Cut(rest, []byte(`"total":`)); ok {
			end := 0
			for end < len(num) && '0' <= num[end] && num[end] <= '9' {
				end++
			}
			if total, err := strconv.ParseInt(string(num[:end]), 10, 64); err == nil {
				return "results", total
			}
		}
	}
	var m struct {
		Type  string `json:"type"`
		Total int64  `json:"total"`
	}
	if json.Unmarshal(data, &m) != nil {
		return "", 0
	}
	return m.Type, m.Total
}

// awaitCaughtUp waits until every live viewer saw accepted votes of the
// run counted, or viewerCatchUpTimeout passes, and notes how many did.
func (vs *viewerSet) awaitCaughtUp(ctx context.Context, accepted int64) {
	ctx, cancel := context.WithTimeout(ctx, viewerCatchUpTimeout)
	defer cancel()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		caught, lagging := vs.countCaughtUp(accepted)
		vs.caughtUp = caught
		if lagging == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (vs *viewerSet) countCaughtUp(accepted int64) (caught, lagging int64) {
	for i := range vs.viewers {
		st := &vs.viewers[i]
		switch {
		case !st.live.Load():
		case st.seen.Load() >= accepted:
			caught++
		default:
			lagging++
		}
	}
	return caught, lagging
}

// liveFeed is a viewer's connection: WebSocket or Server-Sent Events.
type liveFeed interface {
	// next returns the next message's JSON.
	next(ctx context.Context) ([]byte, error)
	close()
}

// open connects a viewer with --live.
func (vs *viewerSet) open(ctx context.Context) (liveFeed, error) {
	if vs.b.cfg.live == "sse" {
		return vs.b.openSSE(ctx)
	}
	c, err := vs.b.dialLive(ctx)
	if err != nil {
		return nil, err
	}
	// Reads take no context: one with a Done channel costs a registration
	// per message, and 10,000 viewers share the cores with the server they
	// measure. The connection is closed when ctx ends instead.
	f := &wsFeed{c: c}
	f.stop = context.AfterFunc(ctx, f.close)
	return f, nil
}

// wsFeed reads a live WebSocket into one buffer, reused for every message.
type wsFeed struct {
	c    *websocket.Conn
	buf  bytes.Buffer
	stop func() bool
}

// next returns the next message; it is valid until the next call.
func (f *wsFeed) next(context.Context) ([]byte, error) {
	_, r, err := f.c.Reader(context.Background())
	if err != nil {
		return nil, err
	}
	f.buf.Reset()
	if _, err := f.buf.ReadFrom(r); err != nil {
		return nil, err
	}
	return f.buf.Bytes(), nil
}

func (f *wsFeed) close() {
	if f.stop != nil {
		f.stop()
	}
	f.c.CloseNow()
}

// sseFeed reads an event stream; the request's context ends it.
type sseFeed struct {
	body io.ReadCloser
	r    *bufio.Reader
}

// openSSE opens the poll's event stream; the stream lives until ctx ends.
func (b *bench) openSSE(ctx context.Context) (liveFeed, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.liveURL(true), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if b.cfg.key != "" {
		req.Header.Set("Authorization", "Bearer "+b.cfg.key)
	}
	resp, err := b.net.ws.Do(req)
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		code := problemCode(resp)
		resp.Body.Close()
		return nil, fmt.Errorf("events: %s (%s)", resp.Status, code)
	}
	return &sseFeed{body: resp.Body, r: bufio.NewReader(resp.Body)}, nil
}

func (f *sseFeed) next(context.Context) ([]byte, error) {
	for {
		line, err := f.r.ReadBytes('\n')
		if err != nil {
			return nil, err
		}
		if data, ok := bytes.CutPrefix(line, []byte("data:")); ok {
			return bytes.TrimSpace(data), nil
		}
	}
}

func (f *sseFeed) close() { f.body.Close() }
