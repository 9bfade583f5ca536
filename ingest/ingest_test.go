package ingest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pollcast/pollcast/ingest"
	"github.com/pollcast/pollcast/internal/testsvc"
	"github.com/pollcast/pollcast/poll"
	"github.com/pollcast/pollcast/votelog"
)

type env struct {
	emb *votelog.Embedded
	nc  *nats.Conn
	js  jetstream.JetStream
	cat *poll.Catalog
}

func newEnv(tb testing.TB) *env {
	tb.Helper()
	l := testsvc.StartLog(tb)
	return &env{emb: l.Emb, nc: l.NC, js: l.JS, cat: l.Catalog(tb)}
}

func (e *env) service(tb testing.TB) *ingest.Service {
	tb.Helper()
	s, err := ingest.New(e.nc, e.cat, ingest.Config{Shards: 4})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	if err := s.Rebuild(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return s
}

func (e *env) poll(tb testing.TB, dedupe poll.Dedupe) *poll.Poll {
	tb.Helper()
	p, err := poll.New(poll.CreateInput{Question: "Q", Dedupe: dedupe, Options: []poll.OptionInput{{Label: "A"}, {Label: "B"}}}, "o", time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	if err := e.cat.CreatePoll(context.Background(), p); err != nil {
		tb.Fatal(err)
	}
	return p
}

// TestRebuildRemembersVoters: a new service on the same log refuses a
// voter who voted before, and answers a retry of the stored vote with the
// same vote ID.
func TestRebuildRemembersVoters(t *testing.T) {
	e := newEnv(t)
	p := e.poll(t, poll.DedupeDevice)
	ctx := context.Background()
	first := e.service(t)
	acc, err := first.Vote(ctx, ingest.Request{PollID: p.ID, Options: []string{"a"}, Voter: "d1", IdempotencyKey: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	if !first.HasVoted(ctx, p, "d1", netip.Addr{}) || first.HasVoted(ctx, p, "d2", netip.Addr{}) {
		t.Fatal("HasVoted wrong before restart")
	}
	second := e.service(t)
	if _, err := second.Vote(ctx, ingest.Request{PollID: p.ID, Options: []string{"b"}, Voter: "d1"}); !errors.Is(err, poll.ErrAlreadyVoted) {
		t.Fatalf("second vote after rebuild = %v", err)
	}
	again, err := second.Vote(ctx, ingest.Request{PollID: p.ID, Options: []string{"a"}, Voter: "d1", IdempotencyKey: "k1"})
	if err != nil || again.VoteID != acc.VoteID {
		t.Fatalf("retry after rebuild = %+v, %v; want vote %s", again, err, acc.VoteID)
	}
	if !second.HasVoted(ctx, p, "d1", netip.Addr{}) {
		t.Fatal("HasVoted forgot d1")
	}
	if last, _ := votelog.LastSeq(ctx, e.js); last != 1 {
		t.Fatalf("log holds %d votes, want 1", last)
	}
}

// TestRememberThenRebuildAfter: the voters handed to Remember by a reader
// of the log (the tally's start-up read) count as the log up to there, and
// RebuildAfter reads only the rest.
func TestRememberThenRebuildAfter(t *testing.T) {
	e := newEnv(t)
	p := e.poll(t, poll.DedupeDevice)
	ctx := context.Background()
	first := e.service(t)
	var ids []string
	for i := range 300 {
		acc, err := first.Vote(ctx, ingest.Request{PollID: p.ID, Options: []string{"a"}, Voter: fmt.Sprintf("d%d", i), IdempotencyKey: fmt.Sprintf("k%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, acc.VoteID)
	}
	// Read the first 200 votes of the log and hand them over as a reader would.
	cons, err := e.js.OrderedConsumer(ctx, votelog.StreamName, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var rs []*votelog.Record
	for range 200 {
		m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		r, err := votelog.Decode(m.Data())
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, &r)
	}
	second, err := ingest.New(e.nc, e.cat, ingest.Config{Shards: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(second.Close)
	if err := second.Remember(ctx, rs, 100); err != nil {
		t.Fatal(err)
	}
	if err := second.RebuildAfter(ctx, 200); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 199, 200, 299} {
		if _, err := second.Vote(ctx, ingest.Request{PollID: p.ID, Options: []string{"b"}, Voter: fmt.Sprintf("d%d", i)}); !errors.Is(err, poll.ErrAlreadyVoted) {
			t.Fatalf("voter %d voting again = %v, want already voted", i, err)
		}
		again, err := second.Vote(ctx, ingest.Request{PollID: p.ID, Options: []string{"a"}, Voter: fmt.Sprintf("d%d", i), IdempotencyKey: fmt.Sprintf("k%d", i)})
		if err != nil || again.VoteID != ids[i] {
			t.Fatalf("retry of vote %d = %+v, %v; want vote %s", i, again, err, ids[i])
		}
	}
	if last, _ := votelog.LastSeq(ctx, e.js); last != 300 {
		t.Fatalf("log holds %d votes, want 300", last)
	}
}

func TestReadyFollowsTheLog(t *testing.T) {
	e := newEnv(t)
	s := e.service(t)
	if err := s.Ready(context.Background()); err != nil {
		t.Fatal(err)
	}
	p := e.poll(t, poll.DedupeNone)
	e.emb.Shutdown()
	if err := s.Ready(context.Background()); err == nil {
		t.Fatal("ready with the log down")
	}
	if _, err := s.Vote(context.Background(), ingest.Request{PollID: p.ID, Options: []string{"a"}}); !errors.Is(err, poll.ErrOverloaded) {
		t.Fatalf("vote with the log down = %v", err)
	}
}

// BenchmarkVote measures admitting one vote (checks, dedupe, publish, wait
// for the ack) on the in-process log, with many votes in flight: the cost
// of the vote hot path without HTTP.
func BenchmarkVote(b *testing.B) {
	e := newEnv(b)
	s := e.service(b)
	for _, dedupe := range []poll.Dedupe{poll.DedupeNone, poll.DedupeDevice} {
		b.Run(string(dedupe), func(b *testing.B) {
			p := e.poll(b, dedupe)
			var n atomic.Int64
			b.ReportAllocs()
			b.SetParallelism(64)
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					req := ingest.Request{PollID: p.ID, Options: []string{"a"}, ClientIP: netip.MustParseAddr("192.0.2.1"),
						Voter: fmt.Sprintf("voter-%d", n.Add(1))}
					if _, err := s.Vote(ctx, req); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "votes/s")
		})
	}
}

// TestGivingUpKeepsTheClaim: a vote whose client stopped waiting may still
// be stored; its voter's claim holds until the log answers, so the voter
// cannot slip a second vote in meanwhile. Only a vote that never reached
// the log (it left the group commit's queue with its client) is a 503, and
// its voter is free again. Either way each voter has one vote in the log.
func TestGivingUpKeepsTheClaim(t *testing.T) {
	e := newEnv(t)
	s := e.service(t)
	p := e.poll(t, poll.DedupeDevice)
	const voters = 20
	for i := range voters {
		voter := fmt.Sprintf("d%d", i)
		gone, cancel := context.WithCancel(context.Background())
		cancel() // the client is gone before the log answers
		_, first := s.Vote(gone, ingest.Request{PollID: p.ID, Options: []string{"a"}, Voter: voter, IdempotencyKey: voter + "k1"})
		_, err := s.Vote(context.Background(), ingest.Request{PollID: p.ID, Options: []string{"b"}, Voter: voter, IdempotencyKey: voter + "k2"})
		switch {
		case errors.Is(first, poll.ErrOverloaded):
			if err != nil {
				t.Fatalf("voter %s, whose first vote never reached the log, votes again: %v", voter, err)
			}
		case !errors.Is(err, poll.ErrAlreadyVoted):
			t.Fatalf("voter %s votes again while the first vote is landing: %v", voter, err)
		}
	}
	testsvc.Eventually(t, 10*time.Second, "every voter's one vote in the log", func() bool {
		n := len(votesIn(t, readLog(t, e.js)))
		if n > voters {
			t.Fatalf("the log holds %d votes of %d voters", n, voters)
		}
		return n == voters
	})
}

// TestBatchPacksKeylessVotes: a batch's votes of one poll are one log
// message, each vote answered with its own ID; a vote with an idempotency
// key joins the pack, and its retry in the same batch is the same vote;
// and a new service on the same log remembers the voters of a pack.
func TestBatchPacksKeylessVotes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	dev, none := e.poll(t, poll.DedupeDevice), e.poll(t, poll.DedupeNone)
	s := e.service(t)
	var reqs []ingest.Request
	for i := range 5 {
		reqs = append(reqs,
			ingest.Request{PollID: dev.ID, Options: []string{"a"}, Voter: fmt.Sprintf("d%d", i)},
			ingest.Request{PollID: none.ID, Options: []string{"b"}})
	}
	reqs = append(reqs,
		ingest.Request{PollID: dev.ID, Options: []string{"a"}, Voter: "d0"},           // the same voter twice
		ingest.Request{PollID: none.ID, Options: []string{"a"}, IdempotencyKey: "k1"}, // in the pack
		ingest.Request{PollID: none.ID, Options: []string{"a"}, IdempotencyKey: "k1"}) // its retry: the same vote
	before, err := votelog.LastSeq(ctx, e.js)
	if err != nil {
		t.Fatal(err)
	}
	out := s.VoteBatch(ctx, reqs)
	ids := map[string]bool{}
	for i, o := range out[:10] {
		if o.Err != nil || ids[o.VoteID] {
			t.Fatalf("vote %d: %+v (IDs must differ)", i, o)
		}
		ids[o.VoteID] = true
	}
	if !errors.Is(out[10].Err, poll.ErrAlreadyVoted) {
		t.Fatalf("the same voter again in a batch: %v", out[10].Err)
	}
	if out[11].Err != nil || out[12].Err != nil || out[11].VoteID != out[12].VoteID {
		t.Fatalf("keyed vote and its retry: %+v, %+v", out[11], out[12])
	}
	after, err := votelog.LastSeq(ctx, e.js)
	if err != nil {
		t.Fatal(err)
	}
	// One pack for each poll.
	if got := after - before; got != 2 {
		t.Fatalf("%d log messages for the batch, want 2", got)
	}
	restarted := e.service(t)
	for i := range 5 {
		if _, err := restarted.Vote(ctx, ingest.Request{PollID: dev.ID, Options: []string{"b"}, Voter: fmt.Sprintf("d%d", i)}); !errors.Is(err, poll.ErrAlreadyVoted) {
			t.Fatalf("voter d%d of a pack voted again after a rebuild: %v", i, err)
		}
	}
}

// TestRegistryKeepsOnlyVotersItNeeds: voters are kept for polls that
// deduplicate or show results after a vote, at the vote and at a rebuild
// from the log; a poll that counts every vote and shows results to all
// keeps none.
func TestRegistryKeepsOnlyVotersItNeeds(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	newPoll := func(dedupe poll.Dedupe, vis poll.Visibility) *poll.Poll {
		p, err := poll.New(poll.CreateInput{Question: "Q", Dedupe: dedupe, ResultsVisibility: vis,
			Options: []poll.OptionInput{{Label: "A"}, {Label: "B"}}}, "o", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := e.cat.CreatePoll(ctx, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	open := newPoll(poll.DedupeNone, poll.VisibleAlways)
	after := newPoll(poll.DedupeNone, poll.VisibleAfterVote)
	device := newPoll(poll.DedupeDevice, poll.VisibleAlways)
	check := func(s *ingest.Service, when string) {
		t.Helper()
		for _, c := range []struct {
			p    *poll.Poll
			want bool
		}{{open, false}, {after, true}, {device, true}} {
			if got := s.HasVoted(ctx, c.p, "v1", netip.Addr{}); got != c.want {
				t.Errorf("%s: HasVoted in a %s/%s poll = %v, want %v", when, c.p.Dedupe, c.p.ResultsVisibility, got, c.want)
			}
		}
	}
	s := e.service(t)
	for _, p := range []*poll.Poll{open, after, device} {
		if _, err := s.Vote(ctx, ingest.Request{PollID: p.ID, Options: []string{"a"}, Voter: "v1"}); err != nil {
			t.Fatal(err)
		}
	}
	check(s, "after the votes")
	check(e.service(t), "after a rebuild")
}

// TestVotersSnapshotThenRebuildAfter: a registry loaded from a snapshot
// taken while votes kept coming, then rebuilt from the log after the
// sequence the snapshot covers, refuses every voter that was answered 202 —
// before, during and after the snapshot.
func TestVotersSnapshotThenRebuildAfter(t *testing.T) {
	e := newEnv(t)
	p := e.poll(t, poll.DedupeDevice)
	ctx := context.Background()
	first := e.service(t)
	var accepted atomic.Int64
	vote := func(i int) {
		if _, err := first.Vote(ctx, ingest.Request{PollID: p.ID, Options: []string{"a"}, Voter: fmt.Sprintf("d%d", i)}); err != nil {
			t.Errorf("vote %d: %v", i, err)
			return
		}
		accepted.Add(1)
	}
	for i := range 200 {
		vote(i)
	}
	stop := make(chan struct{})
	voting := make(chan struct{})
	go func() { // votes while the snapshot is taken
		defer close(voting)
		for i := 200; ; i++ {
			select {
			case <-stop:
				return
			default:
				vote(i)
			}
		}
	}()
	testsvc.Eventually(t, 10*time.Second, "votes during the snapshot", func() bool { return accepted.Load() > 250 })
	vs, err := first.SnapshotVoters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := vs.Write(ctx, &buf); err != nil {
		t.Fatal(err)
	}
	testsvc.Eventually(t, 10*time.Second, "votes after the snapshot", func() bool { return accepted.Load() > int64(vs.Covered())+50 })
	close(stop)
	<-voting
	n := int(accepted.Load())

	mv := ingest.NewMemoryVoters()
	covered, err := mv.LoadSnapshot(&buf, uint64(buf.Len()))
	if err != nil || covered != vs.Covered() || covered < 250 {
		t.Fatalf("loaded a snapshot covering %d (%v), want %d", covered, err, vs.Covered())
	}
	second, err := ingest.New(e.nc, e.cat, ingest.Config{Shards: 4, Voters: mv})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(second.Close)
	if err := second.RebuildAfter(ctx, covered); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := second.Vote(ctx, ingest.Request{PollID: p.ID, Options: []string{"b"}, Voter: fmt.Sprintf("d%d", i)}); !errors.Is(err, poll.ErrAlreadyVoted) {
			t.Fatalf("voter %d of %d voting again after the restart = %v, want already voted", i, n, err)
		}
	}
	if _, err := second.Vote(ctx, ingest.Request{PollID: p.ID, Options: []string{"b"}, Voter: "new"}); err != nil {
		t.Fatalf("a new voter: %v", err)
	}
}
