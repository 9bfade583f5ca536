package tally_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pollcast/pollcast/internal/testsvc"
	"github.com/pollcast/pollcast/poll"
	"github.com/pollcast/pollcast/tally"
	"github.com/pollcast/pollcast/votelog"
)

const shards = 4

type env struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	cat    *poll.Catalog
	shards int
}

func newEnv(tb testing.TB) *env {
	tb.Helper()
	l := testsvc.StartLog(tb)
	return &env{nc: l.NC, js: l.JS, cat: l.Catalog(tb), shards: shards}
}

func (e *env) newPoll(tb testing.TB) string {
	tb.Helper()
	p, err := poll.New(poll.CreateInput{Question: "Q", Options: []poll.OptionInput{{Label: "A"}, {Label: "B"}}}, "owner", time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	if err := e.cat.CreatePoll(context.Background(), p); err != nil {
		tb.Fatal(err)
	}
	return p.ID
}

func (e *env) deletePoll(tb testing.TB, pollID string) {
	tb.Helper()
	if _, err := e.cat.UpdatePoll(context.Background(), pollID, func(p *poll.Poll) (*poll.Poll, error) {
		now := time.Now()
		p.DeletedAt = &now
		return p, nil
	}); err != nil {
		tb.Fatal(err)
	}
}

// logVotes appends n votes for pollID to the log: option a for even i,
// b for odd; voter i%voters (0 voters means anonymous).
func (e *env) logVotes(tb testing.TB, pollID string, n, voters int) {
	tb.Helper()
	subj := votelog.VoteSubject(votelog.Shard(pollID, e.shards), pollID)
	var futs []jetstream.PubAckFuture
	for i := range n {
		r := votelog.Record{VoteID: fmt.Sprintf("v%d", i), PollID: pollID, Options: []string{"a"}, Time: time.Now()}
		if i%2 == 1 {
			r.Options[0] = "b"
		}
		if voters > 0 {
			r.Voter = fmt.Appendf(nil, "voter-%08d", i%voters)
		}
		f, err := e.js.PublishAsync(subj, r.Append(nil))
		if err != nil {
			tb.Fatal(err)
		}
		futs = append(futs, f)
		if len(futs) == 2000 {
			waitAcks(tb, futs)
			futs = futs[:0]
		}
	}
	waitAcks(tb, futs)
}

func waitAcks(tb testing.TB, futs []jetstream.PubAckFuture) {
	tb.Helper()
	for _, f := range futs {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			tb.Fatal(err)
		case <-time.After(10 * time.Second):
			tb.Fatal("no ack")
		}
	}
}

// start starts a tally on store, closed at the end of the test.
func (e *env) start(tb testing.TB, store tally.Store, opts ...func(*tally.Tally) *tally.Tally) *tally.Tally {
	tb.Helper()
	return e.startWith(tb, store, tally.Config{Shards: e.shards}, opts...)
}

// startWith is start with a configuration of the test's own. As in cmd,
// a memory store is rebuilt with direct reads of the log.
func (e *env) startWith(tb testing.TB, store tally.Store, cfg tally.Config, opts ...func(*tally.Tally) *tally.Tally) *tally.Tally {
	tb.Helper()
	if _, memory := store.(*tally.MemoryStore); memory {
		cfg.DirectRead = true
	}
	tl, err := tally.New(e.js, e.nc, store, e.cat, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	for _, o := range opts {
		tl = o(tl)
	}
	if err := tl.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(tl.Close)
	return tl
}

// readerModes are the two ways a tally folds a log it finds at start: one
// reader for every shard first, or each shard's worker alone.
var readerModes = []struct {
	name string
	opts []func(*tally.Tally) *tally.Tally
}{
	{"one reader", nil},
	{"shard workers", []func(*tally.Tally) *tally.Tally{tally.WithoutCatchUp}},
}

func waitCaughtUp(tb testing.TB, tl *tally.Tally) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := tl.WaitCaughtUp(ctx); err != nil {
		tb.Fatal(err)
	}
}

func counts(tb testing.TB, s tally.Store, pollID string) poll.Counts {
	tb.Helper()
	c, err := s.Counts(context.Background(), pollID)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// waitTotal waits until the poll's total is want, and fails at once if it
// goes past it.
func waitTotal(tb testing.TB, s tally.Store, pollID string, want int64) poll.Counts {
	tb.Helper()
	var c poll.Counts
	testsvc.Eventually(tb, 10*time.Second, fmt.Sprintf("total %d of %s", want, pollID), func() bool {
		c = counts(tb, s, pollID)
		if c.Total > want {
			tb.Fatalf("total %d, more than the %d votes logged", c.Total, want)
		}
		return c.Total == want
	})
	return c
}

func sameCounts(a, b poll.Counts) bool {
	return a.PollID == b.PollID && a.Total == b.Total && a.Voters == b.Voters && a.Version == b.Version &&
		a.UpdatedAt.Equal(b.UpdatedAt) && fmt.Sprint(a.Options) == fmt.Sprint(b.Options)
}

func TestTallyCountsTheLogExactlyOnce(t *testing.T) {
	e := newEnv(t)
	p1, p2 := e.newPoll(t), e.newPoll(t)
	e.logVotes(t, p1, 3000, 1000)
	e.logVotes(t, p2, 501, 0)

	// A realtime hub's subscription sees the final counts published.
	sub, err := e.nc.SubscribeSync(votelog.ResultsSubject(p1))
	if err != nil {
		t.Fatal(err)
	}
	first := tally.NewMemoryStore()
	tl := e.start(t, first)
	waitCaughtUp(t, tl)
	c := counts(t, first, p1)
	if c.Total != 3000 || c.Options["a"] != 1500 || c.Options["b"] != 1500 || c.Voters != 1000 || c.Version != 3000 || c.UpdatedAt.IsZero() {
		t.Fatalf("counts of p1 %+v", c)
	}
	if c := counts(t, first, p2); c.Total != 501 || c.Voters != 501 {
		t.Fatalf("anonymous votes count one voter each: %+v", c)
	}
	var published poll.Counts
	for published.Total != 3000 {
		m, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("published counts stop at %+v: %v", published, err)
		}
		if err := json.Unmarshal(m.Data, &published); err != nil {
			t.Fatal(err)
		}
	}
	if !sameCounts(published, c) {
		t.Fatalf("published %+v, stored %+v", published, c)
	}
	if tl.Lag() != 0 {
		t.Fatalf("lag %d after catching up", tl.Lag())
	}

	// More votes while running.
	e.logVotes(t, p1, 100, 0)
	waitTotal(t, first, p1, 3100)

	// A restart on a store already at the end of the log: nothing again.
	tl.Close()
	again := e.start(t, first)
	waitCaughtUp(t, again)
	if c := counts(t, first, p1); c.Total != 3100 || c.Version != 3100 {
		t.Fatalf("restart on a caught-up store counted again: %+v", c)
	}

	// A second tally on the same store at once (a stale twin): fenced,
	// nothing counted twice.
	twin := e.start(t, first)
	waitCaughtUp(t, twin)
	e.logVotes(t, p1, 200, 0)
	waitTotal(t, first, p1, 3300)
	e.logVotes(t, p2, 99, 0)
	waitTotal(t, first, p2, 600)

	// A fresh memory store rebuilds from sequence 1 to the same counts,
	// whether the start-up reader or the shard workers do it.
	for name, opts := range map[string][]func(*tally.Tally) *tally.Tally{
		"one reader":    nil,
		"shard workers": {tally.WithoutCatchUp},
	} {
		t.Run(name, func(t *testing.T) {
			rebuilt := tally.NewMemoryStore()
			waitCaughtUp(t, e.start(t, rebuilt, opts...))
			for _, p := range []string{p1, p2} {
				if got, want := counts(t, rebuilt, p), counts(t, first, p); !sameCounts(got, want) {
					t.Fatalf("rebuilt %+v, want %+v", got, want)
				}
			}
		})
	}
}

func TestTallySkipsBadRecordsAndDeletedPolls(t *testing.T) {
	for _, tc := range readerModes {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			live, gone := e.newPoll(t), e.newPoll(t)
			ctx := context.Background()
			e.logVotes(t, live, 10, 0)
			e.logVotes(t, gone, 10, 0)
			e.deletePoll(t, gone)
			// A bad record last in its shard: caught up means past it.
			if _, err := e.js.Publish(ctx, votelog.VoteSubject(votelog.Shard(live, shards), live), []byte("garbage")); err != nil {
				t.Fatal(err)
			}
			s := tally.NewMemoryStore()
			tl := e.start(t, s, tc.opts...)
			waitCaughtUp(t, tl)
			if c := counts(t, s, live); c.Total != 10 {
				t.Fatalf("live poll %+v", c)
			}
			if c := counts(t, s, gone); c.Total != 0 {
				t.Fatalf("deleted poll counted: %+v", c)
			}

			// A poll deleted while the tally runs: later votes are skipped.
			p := e.newPoll(t)
			e.logVotes(t, p, 5, 0)
			waitTotal(t, s, p, 5)
			e.deletePoll(t, p)
			e.logVotes(t, p, 5, 0)
			e.logVotes(t, live, 1, 0)
			waitCaughtUp(t, tl)
			if c := counts(t, s, p); c.Total != 5 {
				t.Fatalf("votes after deletion counted: %+v", c)
			}
		})
	}
}

// TestTallyResumesEachShardFromItsWatermark: a store that has applied
// some shards to the end and not others (a Redis store that lost one
// shard's keys) gets only the missing shard folded.
func TestTallyResumesEachShardFromItsWatermark(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	byShard := map[int]string{}
	for len(byShard) < shards {
		p := e.newPoll(t)
		if _, ok := byShard[votelog.Shard(p, shards)]; !ok {
			byShard[votelog.Shard(p, shards)] = p
		}
	}
	for _, p := range byShard {
		e.logVotes(t, p, 100, 10)
	}
	end, err := votelog.LastSeq(ctx, e.js)
	if err != nil {
		t.Fatal(err)
	}
	s := tally.NewMemoryStore()
	for shard := 1; shard < shards; shard++ { // as if applied; shard 0 is not
		if err := s.Apply(ctx, tally.Batch{Shard: shard, Prev: 0, Last: end}); err != nil {
			t.Fatal(err)
		}
	}
	waitCaughtUp(t, e.start(t, s))
	if c := counts(t, s, byShard[0]); c.Total != 100 || c.Voters != 10 {
		t.Fatalf("shard 0 poll %+v", c)
	}
	for shard := 1; shard < shards; shard++ {
		if c := counts(t, s, byShard[shard]); c.Total != 0 {
			t.Fatalf("shard %d folded again from the start: %+v", shard, c)
		}
	}
}

// TestTallyLiveLatency: an idle tally folds and publishes a vote at once
// (the batching never waits for more).
func TestTallyLiveLatency(t *testing.T) {
	e := newEnv(t)
	p := e.newPoll(t)
	s := tally.NewMemoryStore()
	waitCaughtUp(t, e.start(t, s))
	sub, err := e.nc.SubscribeSync(votelog.ResultsSubject(p))
	if err != nil {
		t.Fatal(err)
	}
	var took []time.Duration
	for i := range 20 {
		start := time.Now()
		e.logVotes(t, p, 1, 0)
		for {
			m, err := sub.NextMsg(time.Second)
			if err != nil {
				t.Fatalf("vote %d not published within 1s: %v", i+1, err)
			}
			var c poll.Counts
			if err := json.Unmarshal(m.Data, &c); err != nil {
				t.Fatal(err)
			}
			if c.Total == int64(i+1) {
				break
			}
		}
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	t.Logf("log append to published counts: median %v, max %v", took[len(took)/2], took[len(took)-1])
}

// flakyStore is a MemoryStore whose Apply fails now and then, as a store
// that times out does.
type flakyStore struct {
	*tally.MemoryStore
	calls atomic.Int64
}

var errFlaky = errors.New("store unavailable")

func (s *flakyStore) Apply(ctx context.Context, b tally.Batch) error {
	if s.calls.Add(1)%3 != 0 {
		return errFlaky
	}
	return s.MemoryStore.Apply(ctx, b)
}

func TestTallyRetriesStoreErrors(t *testing.T) {
	for name, opts := range map[string][]func(*tally.Tally) *tally.Tally{
		"one reader":    nil,
		"shard workers": {tally.WithoutCatchUp},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			p, q := e.newPoll(t), e.newPoll(t)
			e.logVotes(t, p, 300, 50)
			s := &flakyStore{MemoryStore: tally.NewMemoryStore()}
			tl := e.start(t, s, opts...)
			waitCaughtUp(t, tl)
			e.logVotes(t, q, 40, 0)
			waitTotal(t, s, q, 40)
			if c := counts(t, s, p); c.Total != 300 || c.Voters != 50 {
				t.Fatalf("counts %+v after failed applies", c)
			}
			if s.calls.Load() < 3 {
				t.Fatalf("only %d applies", s.calls.Load())
			}
		})
	}
}

// TestTwoTalliesStartOnOneStore: two tallies rebuild one memory store at
// the same time; whichever loses a shard's race is fenced and hands it over.
func TestTwoTalliesStartOnOneStore(t *testing.T) {
	e := newEnv(t)
	var polls []string
	for range 6 {
		p := e.newPoll(t)
		polls = append(polls, p)
		e.logVotes(t, p, 2000, 300)
	}
	s := tally.NewMemoryStore()
	a, b := e.start(t, s), e.start(t, s)
	waitCaughtUp(t, a)
	waitCaughtUp(t, b)
	for _, p := range polls {
		if c := counts(t, s, p); c.Total != 2000 || c.Voters != 300 || c.Options["a"] != 1000 {
			t.Fatalf("counts %+v", c)
		}
	}
}

func TestTallyMetrics(t *testing.T) {
	e := newEnv(t)
	p := e.newPoll(t)
	e.logVotes(t, p, 700, 0)
	reg := prometheus.NewPedanticRegistry()
	tl := e.startWith(t, tally.NewMemoryStore(), tally.Config{Shards: shards, Registerer: reg})
	waitCaughtUp(t, tl)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		m := mf.GetMetric()[0]
		got[mf.GetName()] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
	}
	if got["pollcast_tally_votes_applied_total"] != 700 || got["pollcast_tally_batches_applied_total"] < 1 || got["pollcast_tally_lag_votes"] != 0 {
		t.Fatalf("metrics %v", got)
	}
	// A second tally on the same registry is refused, not silently unregistered.
	if _, err := tally.New(e.js, e.nc, tally.NewMemoryStore(), e.cat, tally.Config{Registerer: reg}); err == nil {
		t.Fatal("registered the metrics twice")
	}
}

func TestTallyLifecycle(t *testing.T) {
	e := newEnv(t)
	if _, err := tally.New(e.js, e.nc, nil, e.cat, tally.Config{}); err == nil {
		t.Fatal("New without a store succeeded")
	}
	tl, err := tally.New(e.js, e.nc, tally.NewMemoryStore(), e.cat, tally.Config{})
	if err != nil {
		t.Fatal(err)
	}
	tl.Close() // before Start
	if err := tl.Start(context.Background()); err == nil {
		t.Fatal("Start after Close succeeded")
	}
	tl.Close()

	tl, err = tally.New(e.js, e.nc, tally.NewMemoryStore(), e.cat, tally.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := tl.Start(ctx); err != nil {
		t.Fatal(err)
	}
	cancel() // the workers outlive Start's context
	if err := tl.Start(context.Background()); err == nil {
		t.Fatal("second Start succeeded")
	}
	waitCaughtUp(t, tl)
	tl.Close()
	tl.Close()
}

// BenchmarkRebuild measures folding a logged log into a fresh memory store,
// as at start: votes/s is the figure. 200,000 votes on 64 polls, every vote
// by a distinct voter, on the default 16 shards.
func BenchmarkRebuild(b *testing.B) {
	e := newEnv(b)
	e.shards = votelog.DefaultShards
	const votes, polls = 200_000, 64
	for range polls {
		e.logVotes(b, e.newPoll(b), votes/polls, votes/polls)
	}
	for _, bc := range readerModes {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				tl, err := tally.New(e.js, e.nc, tally.NewMemoryStore(), e.cat, tally.Config{Shards: e.shards, Logger: slog.New(slog.DiscardHandler), DirectRead: true})
				if err != nil {
					b.Fatal(err)
				}
				for _, o := range bc.opts {
					tl = o(tl)
				}
				if err := tl.Start(context.Background()); err != nil {
					b.Fatal(err)
				}
				if err := tl.WaitCaughtUp(context.Background()); err != nil {
					b.Fatal(err)
				}
				tl.Close()
			}
			b.ReportMetric(float64(votes/polls*polls)*float64(b.N)/b.Elapsed().Seconds(), "votes/s")
		})
	}
}

// TestTwoTalliesOnOneRedisStoreCountOnce: two tally processes fold the
// same shards into one Redis store at once (a worker that lost its lease
// and one that took over); fencing by the watermark keeps every vote
// counted exactly once.
func TestTwoTalliesOnOneRedisStoreCountOnce(t *testing.T) {
	e := newEnv(t)
	rdb, prefix := testsvc.Redis(t)
	store, err := tally.NewRedisStore(rdb, tally.RedisConfig{Prefix: prefix, Shards: shards})
	if err != nil {
		t.Fatal(err)
	}
	p1, p2 := e.newPoll(t), e.newPoll(t)
	e.start(t, store)
	e.start(t, store)
	for range 5 {
		e.logVotes(t, p1, 400, 100)
		e.logVotes(t, p2, 300, 0)
	}
	c := waitTotal(t, store, p1, 2000)
	if c.Voters != 100 || c.Options["a"] != 1000 || c.Options["b"] != 1000 {
		t.Fatalf("p1 counts %+v", c)
	}
	waitTotal(t, store, p2, 1500)

	// A fresh process resumes from the stored watermarks: nothing replayed.
	third := e.start(t, store)
	waitCaughtUp(t, third)
	if c := counts(t, store, p1); c.Total != 2000 {
		t.Fatalf("after a third tally: %+v", c)
	}
}

// TestLeasesSplitShardsAndHandOver: two tally processes share the shards
// through leases; when one stops, the other takes its shards over and
// every vote is still counted exactly once.
func TestLeasesSplitShardsAndHandOver(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	leases, err := e.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "leases", TTL: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	rdb, prefix := testsvc.Redis(t)
	store, err := tally.NewRedisStore(rdb, tally.RedisConfig{Prefix: prefix, Shards: shards})
	if err != nil {
		t.Fatal(err)
	}
	startLeased := func(owner string) *tally.Tally {
		tl, err := tally.New(e.js, e.nc, store, e.cat, tally.Config{Shards: shards, Leases: leases, LeaseRenew: 200 * time.Millisecond, Owner: owner})
		if err != nil {
			t.Fatal(err)
		}
		if err := tl.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(tl.Close)
		return tl
	}
	a := startLeased("a")
	startLeased("b")
	var polls []string
	for range 8 {
		polls = append(polls, e.newPoll(t))
	}
	for _, p := range polls {
		e.logVotes(t, p, 200, 0)
	}
	for _, p := range polls {
		waitTotal(t, store, p, 200)
	}
	owners := map[string]bool{}
	for s := range shards {
		if en, err := leases.Get(ctx, fmt.Sprintf("shard-%d", s)); err == nil {
			owners[string(en.Value())] = true
		}
	}
	t.Logf("lease holders: %v", owners)

	a.Close() // a's shards are handed over
	handover := time.Now()
	for _, p := range polls {
		e.logVotes(t, p, 100, 0)
	}
	for _, p := range polls {
		waitTotal(t, store, p, 300)
	}
	t.Logf("all shards folded again %v after one process stopped", time.Since(handover).Round(time.Millisecond))
	for s := range shards {
		en, err := leases.Get(ctx, fmt.Sprintf("shard-%d", s))
		if err != nil || string(en.Value()) != "b" {
			t.Fatalf("shard %d lease: %v %v, want held by b", s, en, err)
		}
	}
}

// TestTallyObserveSeesTheWholeLogOnce: the start-up read hands every
// record of the log to Config.Observe once, in log order, deleted polls'
// and all shards' included, and Observed says it reached the end.
func TestTallyObserveSeesTheWholeLogOnce(t *testing.T) {
	e := newEnv(t)
	polls := []string{e.newPoll(t), e.newPoll(t), e.newPoll(t)}
	for i, id := range polls {
		e.logVotes(t, id, 500*(i+1), 100)
	}
	e.deletePoll(t, polls[2])
	var mu sync.Mutex
	seen := map[string]int{}
	next := map[string]int{} // per poll, the vote logged next: logVotes numbers them in order
	total := uint64(3000)
	obs := func(rs []*votelog.Record, more uint64) error {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range rs {
			seen[r.PollID+"/"+r.VoteID]++
			if want := fmt.Sprintf("v%d", next[r.PollID]); r.VoteID != want {
				return fmt.Errorf("poll %s: observed %s, want %s next", r.PollID, r.VoteID, want)
			}
			next[r.PollID]++
		}
		if got := uint64(len(seen)) + more; got != total {
			return fmt.Errorf("observed %d with %d more to come, the log holds %d", len(seen), more, total)
		}
		return nil
	}
	tl := e.startWith(t, tally.NewMemoryStore(), tally.Config{Shards: e.shards, Observe: obs})
	waitCaughtUp(t, tl)
	last, err := votelog.LastSeq(context.Background(), e.js)
	if err != nil {
		t.Fatal(err)
	}
	if got := tl.Observed(); got != last {
		t.Fatalf("Observed() = %d, the log ends at %d", got, last)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 500+1000+1500 {
		t.Fatalf("observed %d distinct votes, the log holds 3000", len(seen))
	}
	for k, n := range seen {
		if n != 1 {
			t.Fatalf("vote %s observed %d times", k, n)
		}
	}
}

// TestTallyReadsAFreshMemoryStoreDirectly: the start-up catch-up of a
// fresh memory store reads the log with direct gets, batch after batch, to
// the end; a batch with a deleted message stops it, and a consumer reads
// the rest; every vote is counted and observed once either way.
func TestTallyReadsAFreshMemoryStoreDirectly(t *testing.T) {
	for _, tc := range []struct {
		name    string
		deleted uint64 // a message deleted from the log, 0 for none
	}{
		{"to the end", 0},
		{"deleted message in the second batch", 20_000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			p, q := e.newPoll(t), e.newPoll(t)
			e.logVotes(t, p, 15_000, 1_000) // sequences 1-15,000
			e.logVotes(t, q, 10_000, 0)     // 15,001-25,000
			wantQ := int64(10_000)
			if tc.deleted != 0 {
				stream, err := e.js.Stream(ctx, votelog.StreamName)
				if err != nil {
					t.Fatal(err)
				}
				if err := stream.DeleteMsg(ctx, tc.deleted); err != nil {
					t.Fatal(err)
				}
				wantQ--
			}
			var mu sync.Mutex
			observed := 0
			obs := func(rs []*votelog.Record, _ uint64) error {
				mu.Lock()
				defer mu.Unlock()
				observed += len(rs)
				return nil
			}
			s := tally.NewMemoryStore()
			tl := e.startWith(t, s, tally.Config{Shards: e.shards, Observe: obs})
			waitCaughtUp(t, tl)
			if c := counts(t, s, p); c.Total != 15_000 || c.Voters != 1_000 {
				t.Fatalf("counts of p %+v", c)
			}
			if c := counts(t, s, q); c.Total != wantQ || c.Voters != wantQ {
				t.Fatalf("counts of q %+v, want %d votes", c, wantQ)
			}
			direct := tally.ReadDirectly(tl)
			switch {
			case tc.deleted == 0 && direct != 25_000:
				t.Fatalf("read directly up to %d, want the whole log", direct)
			case tc.deleted != 0 && (direct == 0 || direct >= tc.deleted):
				t.Fatalf("read directly up to %d, want up to a batch before %d", direct, tc.deleted)
			}
			mu.Lock()
			defer mu.Unlock()
			if int64(observed) != 15_000+wantQ || tl.Observed() != 25_000 {
				t.Fatalf("observed %d votes up to %d, want %d up to 25,000", observed, tl.Observed(), 15_000+wantQ)
			}
		})
	}
}

// TestTallyDirectReadOfVotesOnAnotherShard: a vote on the subject of
// another shard than its poll's (a log written with another shard count)
// is counted once when a direct read routes it by poll, before and after
// the shard workers, which read by subject, take over.
func TestTallyDirectReadOfVotesOnAnotherShard(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	p := e.newPoll(t)
	right := votelog.Shard(p, shards)
	wrong := (right + 1) % shards
	publish := func(n int, shard int) {
		t.Helper()
		for i := range n {
			r := votelog.Record{VoteID: fmt.Sprintf("w%d", i), PollID: p, Options: []string{"a"}, Time: time.Now()}
			if _, err := e.js.Publish(ctx, votelog.VoteSubject(shard, p), r.Append(nil)); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish(30, wrong)
	publish(20, right)
	publish(10, wrong)
	s := tally.NewMemoryStore()
	tl := e.start(t, s)
	waitCaughtUp(t, tl)
	if got := tally.ReadDirectly(tl); got != 60 {
		t.Fatalf("read directly up to %d, want 60", got)
	}
	if c := counts(t, s, p); c.Total != 60 {
		t.Fatalf("total %d after the rebuild, want 60", c.Total)
	}
	publish(7, wrong)
	publish(5, right)
	waitTotal(t, s, p, 72)
	waitCaughtUp(t, tl)
	if c := counts(t, s, p); c.Total != 72 {
		t.Fatalf("total %d once followed, want 72", c.Total)
	}
}

// TestTallyReadsWithAConsumerByDefault: without Config.DirectRead, even a
// fresh memory store is rebuilt through a consumer, to the same counts.
func TestTallyReadsWithAConsumerByDefault(t *testing.T) {
	e := newEnv(t)
	p := e.newPoll(t)
	e.logVotes(t, p, 500, 50)
	s := tally.NewMemoryStore()
	tl, err := tally.New(e.js, e.nc, s, e.cat, tally.Config{Shards: e.shards})
	if err != nil {
		t.Fatal(err)
	}
	if err := tl.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tl.Close)
	waitCaughtUp(t, tl)
	if got := tally.ReadDirectly(tl); got != 0 {
		t.Fatalf("read directly up to %d without DirectRead", got)
	}
	if c := counts(t, s, p); c.Total != 500 || c.Voters != 50 {
		t.Fatalf("counts %+v", c)
	}
}
