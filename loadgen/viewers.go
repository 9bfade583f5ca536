package loadgen

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// The viewers scenario: Config.Viewers live connections on one poll while
// votes arrive over HTTP. The k-th vote answered 202 (in order of arrival)
// is taken to be counted in any results message whose total reaches k: a
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
	g       *Generator
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

// ViewerSummary reports on the viewers.
type ViewerSummary struct {
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
func newViewerSet(g *Generator, before int64) *viewerSet {
	capacity := 1024
	if g.cfg.Rate > 0 {
		capacity = int(g.cfg.Rate*g.cfg.Duration.Seconds()*1.1) + 1024
	}
	return &viewerSet{g: g, base: before, lat: newHistogram(), viewers: make([]viewerState, g.cfg.Viewers),
		arr: &arrivals{start: time.Now(), times: make([]int64, 0, capacity)}}
}

func (vs *viewerSet) summary() *ViewerSummary {
	return &ViewerSummary{Wanted: vs.g.cfg.Viewers, Live: vs.g.cfg.Live, Connected: vs.connected.Load(),
		Failed: vs.failed.Load(), Dropped: vs.dropped.Load(), CaughtUp: vs.caughtUp, ConnectS: vs.connectTime.Seconds()}
}

// runViewers connects the viewers, votes over HTTP for Config.Duration,
// waits for the viewers to see the final total, and returns how long the
// votes took.
func (g *Generator) runViewers(ctx context.Context) (time.Duration, error) {
	vs := g.viewers
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
	fmt.Fprintf(g.stderr, "bench: %d of %d viewers connected in %.1fs; voting for %v\n",
		vs.connected.Load(), g.cfg.Viewers, vs.connectTime.Seconds(), g.cfg.Duration)
	if vs.connected.Load() == 0 {
		_, first := g.st.connErrorCounts()
		return 0, fmt.Errorf("no viewer could connect: %s", first)
	}
	elapsed := g.voteForViewers(ctx)
	vs.awaitCaughtUp(ctx, g.st.ok.Load())
	return elapsed, nil
}

// voteForViewers sends single votes over HTTP for Config.Duration, noting
// when each 202 arrives.
func (g *Generator) voteForViewers(ctx context.Context) time.Duration {
	sendCtx, cancel := context.WithTimeout(ctx, g.cfg.Duration)
	defer cancel()
	start := time.Now()
	target, prefix := g.votesURL(), g.votePrefix(false)
	var wg sync.WaitGroup
	wg.Go(func() { g.pace.run(sendCtx) })
	for range g.cfg.Concurrency {
		wg.Go(func() {
			for g.pace.wait(sendCtx) {
				if g.voteHTTP(ctx, target, prefix) {
					g.viewers.arr.add()
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
				vs.g.st.connError(fmt.Errorf("viewer dropped: %w", err))
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
	vs.g.st.connError(err)
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
