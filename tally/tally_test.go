package tally_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pollcast/pollcast/internal/testsvc"
	"github.com/pollcast/pollcast/poll"
	"github.com/pollcast/pollcast/tally"
	"github.com/pollcast/pollcast/votelog"
)

const shards = 4

type env struct {
	nc  *nats.Conn
	js  jetstream.JetStream
	cat *poll.Catalog
}

func newEnv(tb testing.TB) *env {
	tb.Helper()
	l := testsvc.StartLog(tb)
	return &env{nc: l.NC, js: l.JS, cat: l.Catalog(tb)}
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

// logVotes appends n votes for pollID to the log: option a for even i,
// b for odd; voter i%voters (0 voters means anonymous).
func (e *env) logVotes(tb testing.TB, pollID string, n, voters int) {
	tb.Helper()
	subj := votelog.VoteSubject(votelog.Shard(pollID, shards), pollID)
	var futs []jetstream.PubAckFuture
	for i := range n {
		r := votelog.Record{VoteID: fmt.Sprintf("v%d", i), PollID: pollID, Options: []string{"a"}, Time: time.Now()}
		if i%2 == 1 {
			r.Options[0] = "b"
		}
		if voters > 0 {
			r.Voter = []byte(fmt.Sprintf("voter-%08d", i%voters))
		}
		f, err := e.js.PublishAsync(subj, r.Append(nil))
		if err != nil {
			tb.Fatal(err)
		}
		futs = append(futs, f)
		if len(futs) == 4096 {
			waitAcks(tb, futs)
			futs = futs[:0]
		}
	}
	waitAcks(tb, futs)
}

func waitAcks(tb testing.TB, futs []jetstream.PubAckFuture) {
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

func (e *env) start(tb testing.TB, store tally.Store) *tally.Tally {
	tb.Helper()
	tl, err := tally.New(e.js, e.nc, store, e.cat, tally.Config{Shards: shards})
	if err != nil {
		tb.Fatal(err)
	}
	if err := tl.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(tl.Close)
	return tl
}

func waitTotal(tb testing.TB, s tally.Store, pollID string, want int64) poll.Counts {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := s.Counts(context.Background(), pollID)
		if err != nil {
			tb.Fatal(err)
		}
		if c.Total == want {
			return c
		}
		if c.Total > want || time.Now().After(deadline) {
			tb.Fatalf("total %d, want %d", c.Total, want)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestTallyCountsTheLogExactlyOnce(t *testing.T) {
	e := newEnv(t)
	p1, p2 := e.newPoll(t), e.newPoll(t)
	e.logVotes(t, p1, 3000, 1000)
	e.logVotes(t, p2, 501, 0)

	// Live: a subscriber sees the final counts published.
	sub, err := e.nc.SubscribeSync(votelog.ResultsSubject(p1))
	if err != nil {
		t.Fatal(err)
	}
	first := tally.NewMemoryStore()
	tl := e.start(t, first)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tl.WaitCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	c := waitTotal(t, first, p1, 3000)
	if c.Options["a"] != 1500 || c.Options["b"] != 1500 || c.Voters != 1000 || c.Version != 3000 {
		t.Fatalf("counts %+v", c)
	}
	if c := waitTotal(t, first, p2, 501); c.Voters != 501 {
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
	if tl.Lag() != 0 {
		t.Fatalf("lag %d after catching up", tl.Lag())
	}

	// More votes while running.
	e.logVotes(t, p1, 100, 0)
	waitTotal(t, first, p1, 3100)

	// A second tally on the same store (a stale twin, a restart): fenced,
	// nothing counted twice.
	twin := e.start(t, first)
	if err := twin.WaitCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	e.logVotes(t, p1, 200, 0)
	waitTotal(t, first, p1, 3300)

	// A fresh memory store rebuilds from the start of the log.
	rebuilt := tally.NewMemoryStore()
	r := e.start(t, rebuilt)
	if err := r.WaitCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	if c, _ := rebuilt.Counts(ctx, p1); c.Total != 3300 || c.Voters != 1300 {
		t.Fatalf("rebuilt counts %+v", c)
	}
	if c, _ := first.Counts(ctx, p1); c.Total != 3300 {
		t.Fatalf("double counted: %+v", c)
	}
}

func TestTallySkipsBadRecordsAndDeletedPolls(t *testing.T) {
	e := newEnv(t)
	live, gone := e.newPoll(t), e.newPoll(t)
	ctx := context.Background()
	if _, err := e.js.Publish(ctx, votelog.VoteSubject(votelog.Shard(live, shards), live), []byte("garbage")); err != nil {
		t.Fatal(err)
	}
	e.logVotes(t, live, 10, 0)
	e.logVotes(t, gone, 10, 0)
	if _, err := e.cat.UpdatePoll(ctx, gone, func(p *poll.Poll) (*poll.Poll, error) {
		now := time.Now()
		p.DeletedAt = &now
		return p, nil
	}); err != nil {
		t.Fatal(err)
	}
	s := tally.NewMemoryStore()
	tl := e.start(t, s)
	if err := tl.WaitCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	waitTotal(t, s, live, 10)
	if c, _ := s.Counts(ctx, gone); c.Total != 0 {
		t.Fatalf("deleted poll counted: %+v", c)
	}
}

// BenchmarkRebuild measures folding a logged poll into a fresh memory
// store, as at start: votes/s is the figure.
func BenchmarkRebuild(b *testing.B) {
	e := newEnv(b)
	const votes = 200_000
	var ids []string
	for range shards {
		id := e.newPoll(b)
		ids = append(ids, id)
		e.logVotes(b, id, votes/shards, votes/shards)
	}
	b.ResetTimer()
	for range b.N {
		s := tally.NewMemoryStore()
		tl, err := tally.New(e.js, e.nc, s, e.cat, tally.Config{Shards: shards})
		if err != nil {
			b.Fatal(err)
		}
		_ = tl.Start(context.Background())
		if err := tl.WaitCaughtUp(context.Background()); err != nil {
			b.Fatal(err)
		}
		tl.Close()
	}
	b.ReportMetric(float64(votes)*float64(b.N)/b.Elapsed().Seconds(), "votes/s")
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
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := third.WaitCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	if c, _ := store.Counts(ctx, p1); c.Total != 2000 {
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
