package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pollcast/pollcast/ingest"
	"github.com/pollcast/pollcast/internal/testsvc"
	"github.com/pollcast/pollcast/poll"
	"github.com/pollcast/pollcast/votelog"
)

// shortLogWindow shortens the stream's duplicate window to w and returns
// a function that waits until w has passed since it was called.
func (e *env) shortLogWindow(tb testing.TB, w time.Duration) (waitPast func()) {
	tb.Helper()
	if _, err := votelog.EnsureStream(context.Background(), e.js, votelog.StreamConfig{DuplicateWindow: w}); err != nil {
		tb.Fatal(err)
	}
	return func() {
		start := time.Now()
		testsvc.Eventually(tb, 2*w+time.Second, "the log's duplicate window to pass", func() bool { return time.Since(start) > w+w/2 })
	}
}

func logMessages(tb testing.TB, e *env) uint64 {
	tb.Helper()
	n, err := votelog.LastSeq(context.Background(), e.js)
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// TestRetryRecognisedPastTheLogWindow: a retry with the same idempotency
// key after the log's duplicate window, and again after a restart, gets
// the same vote ID and is stored once; the same for a batch.
func TestRetryRecognisedPastTheLogWindow(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	waitPast := e.shortLogWindow(t, time.Second)
	none := e.poll(t, poll.DedupeNone)
	s := e.service(t)
	first, err := s.Vote(ctx, ingest.Request{PollID: none.ID, Options: []string{"a"}, IdempotencyKey: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	batch := []ingest.Request{
		{PollID: none.ID, Options: []string{"b"}, IdempotencyKey: "b1"},
		{PollID: none.ID, Options: []string{"a"}, IdempotencyKey: "b2"},
	}
	out := s.VoteBatch(ctx, batch)
	waitPast()
	check := func(s *ingest.Service, when string) {
		t.Helper()
		again, err := s.Vote(ctx, ingest.Request{PollID: none.ID, Options: []string{"a"}, IdempotencyKey: "k1"})
		if err != nil || again.VoteID != first.VoteID {
			t.Fatalf("%s: retry = %+v, %v; want vote %s", when, again, err, first.VoteID)
		}
		for i, o := range s.VoteBatch(ctx, batch) {
			if o.Err != nil || o.VoteID != out[i].VoteID {
				t.Fatalf("%s: batch retry %d = %+v; want vote %s", when, i, o, out[i].VoteID)
			}
		}
		checkOnce(t, e.js, first.VoteID, out[0].VoteID, out[1].VoteID)
	}
	check(s, "past the log's window")
	check(e.service(t), "after a restart")
}

// TestRetryAfterTheIdempotencyWindowIsANewVote: once the idempotency
// window has passed, the same key is a new vote with the same vote ID.
func TestRetryAfterTheIdempotencyWindowIsANewVote(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	waitPast := e.shortLogWindow(t, time.Second)
	none := e.poll(t, poll.DedupeNone)
	s := e.serviceWith(t, ingest.Config{Keys: ingest.NewMemoryKeys(ingest.KeysConfig{Window: time.Second})})
	first, err := s.Vote(ctx, ingest.Request{PollID: none.ID, Options: []string{"a"}, IdempotencyKey: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	waitPast()
	again, err := s.Vote(ctx, ingest.Request{PollID: none.ID, Options: []string{"a"}, IdempotencyKey: "k1"})
	if err != nil || again.VoteID != first.VoteID {
		t.Fatalf("retry past the window = %+v, %v", again, err)
	}
	if n := logMessages(t, e); n != 2 {
		t.Fatalf("the log holds %d messages, want 2: a retry past the window is a new vote", n)
	}
}

// TestKeyedBatchSharesPacks: a batch of keyed votes (as the SDK sends) is
// a handful of log messages, and its retry adds none.
func TestKeyedBatchSharesPacks(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	none := e.poll(t, poll.DedupeNone)
	s := e.service(t)
	reqs := make([]ingest.Request, 1500)
	for i := range reqs {
		reqs[i] = ingest.Request{PollID: none.ID, Options: []string{"a"}, IdempotencyKey: fmt.Sprintf("k%d", i)}
	}
	out := s.VoteBatch(ctx, reqs)
	for i, o := range out {
		if o.Err != nil {
			t.Fatalf("vote %d: %v", i, o.Err)
		}
	}
	if n := logMessages(t, e); n > 3 {
		t.Fatalf("%d log messages for 1,500 keyed votes, want a handful", n)
	}
	for i, o := range s.VoteBatch(ctx, reqs) {
		if o.Err != nil || o.VoteID != out[i].VoteID {
			t.Fatalf("retry of vote %d = %+v, want vote %s", i, o, out[i].VoteID)
		}
	}
	if n := logMessages(t, e); n > 3 {
		t.Fatalf("the retry of the batch added messages: %d", n)
	}
	if got := len(votesInLog(t, e.js)); got != len(reqs) {
		t.Fatalf("the log holds %d votes, want %d", got, len(reqs))
	}
}

// TestKeysOnAnyNode: two ingest nodes on one log share the Redis voter and
// key registries: a retry on the other node, past the log's window, is
// the same vote; two attempts of one key on both nodes at once store it
// once; a node started later knows the keys.
func TestKeysOnAnyNode(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	waitPast := e.shortLogWindow(t, time.Second)
	dev := e.poll(t, poll.DedupeNone) // no voter registry to fall back on: the keys alone
	rdb, prefix := testsvc.Redis(t)
	node := func() *ingest.Service {
		voters, err := ingest.NewRedisVoters(rdb, ingest.RedisVotersConfig{Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		keys, err := ingest.NewRedisKeys(rdb, ingest.RedisKeysConfig{Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		return e.serviceWith(t, ingest.Config{Voters: voters, Keys: keys})
	}
	a, b := node(), node()
	first, err := a.Vote(ctx, ingest.Request{PollID: dev.ID, Options: []string{"a"}, Voter: "d1", IdempotencyKey: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	both := make([]ingest.Accepted, 2)
	errs := make([]error, 2)
	for i, s := range []*ingest.Service{a, b} {
		wg.Go(func() {
			both[i], errs[i] = s.Vote(ctx, ingest.Request{PollID: dev.ID, Options: []string{"b"}, Voter: "d2", IdempotencyKey: "k2"})
		})
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil || both[0].VoteID != both[1].VoteID {
		t.Fatalf("one key on two nodes at once: %+v %v, %+v %v", both[0], errs[0], both[1], errs[1])
	}
	waitPast()
	for _, s := range []*ingest.Service{b, node()} {
		again, err := s.Vote(ctx, ingest.Request{PollID: dev.ID, Options: []string{"a"}, Voter: "d1", IdempotencyKey: "k1"})
		if err != nil || again.VoteID != first.VoteID {
			t.Fatalf("retry on another node = %+v, %v; want vote %s", again, err, first.VoteID)
		}
	}
	checkOnce(t, e.js, first.VoteID, both[0].VoteID)
}

// BenchmarkVoteBatch1000: a batch of 1,000 votes of one poll, keyless
// against keyed as the SDK sends them (each with a new key): the cost the
// key registry adds to a batch.
func BenchmarkVoteBatch1000(b *testing.B) {
	e := newEnv(b)
	s := e.service(b)
	p := e.poll(b, poll.DedupeNone)
	ctx := context.Background()
	for _, keyed := range []bool{false, true} {
		b.Run(map[bool]string{false: "keyless", true: "keyed"}[keyed], func(b *testing.B) {
			reqs := make([]ingest.Request, 1000)
			n := 0
			b.ReportAllocs()
			for b.Loop() {
				for i := range reqs {
					reqs[i] = ingest.Request{PollID: p.ID, Options: []string{"a"}}
					if keyed {
						n++
						reqs[i].IdempotencyKey = "key-" + strconv.Itoa(n)
					}
				}
				for _, o := range s.VoteBatch(ctx, reqs) {
					if o.Err != nil {
						b.Fatal(o.Err)
					}
				}
			}
			b.ReportMetric(float64(b.N*len(reqs))/b.Elapsed().Seconds(), "votes/s")
		})
	}
}

// TestClaimCommittedAfterACrash: an ingest node on the Redis registry dies
// between the log's acknowledgement of a vote and the commit of its
// voter's claim. Long after the pending claim would have expired, the
// voter's second vote on a restarted node is refused, and a retry of the
// keyed vote is the same vote.
func TestClaimCommittedAfterACrash(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	dev := e.poll(t, poll.DedupeDevice)
	rdb, prefix := testsvc.Redis(t)
	const pending = 300 * time.Millisecond
	node := func() *ingest.Service {
		voters, err := ingest.NewRedisVoters(rdb, ingest.RedisVotersConfig{Prefix: prefix, PendingTTL: pending})
		if err != nil {
			t.Fatal(err)
		}
		keys, err := ingest.NewRedisKeys(rdb, ingest.RedisKeysConfig{Prefix: prefix, PendingTTL: pending})
		if err != nil {
			t.Fatal(err)
		}
		s, err := ingest.New(e.nc, e.cat, ingest.Config{Shards: 4, Voters: voters, Keys: keys})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		return s
	}
	crashing := node()
	if err := crashing.Rebuild(ctx); err != nil {
		t.Fatal(err)
	}
	ingest.Abandon(crashing)
	crashing.Close() // its reader of the log stops with it: the commit is left to the next node
	first, err := crashing.Vote(ctx, ingest.Request{PollID: dev.ID, Options: []string{"a"}, Voter: "d1", IdempotencyKey: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	testsvc.Eventually(t, 5*time.Second, "the pending claim's TTL to pass", func() bool { return time.Since(start) > 2*pending })
	restarted := node()
	if err := restarted.Rebuild(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := restarted.Vote(ctx, ingest.Request{PollID: dev.ID, Options: []string{"b"}, Voter: "d1"}); !errors.Is(err, poll.ErrAlreadyVoted) {
		t.Fatalf("the voter's second vote after the crash = %v, want already voted", err)
	}
	again, err := restarted.Vote(ctx, ingest.Request{PollID: dev.ID, Options: []string{"a"}, Voter: "d1", IdempotencyKey: "k1"})
	if err != nil || again.VoteID != first.VoteID {
		t.Fatalf("retry after the crash = %+v, %v; want vote %s", again, err, first.VoteID)
	}
	checkOnce(t, e.js, first.VoteID)
}
