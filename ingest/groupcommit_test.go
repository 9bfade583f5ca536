package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pollcast/pollcast/ingest"
	"github.com/pollcast/pollcast/internal/testsvc"
	"github.com/pollcast/pollcast/poll"
	"github.com/pollcast/pollcast/votelog"
)

// newSyncedEnv is newEnv on a log that flushes every message to disk
// before it answers, as pollcast runs it.
func newSyncedEnv(tb testing.TB) *env {
	tb.Helper()
	l := testsvc.StartLogWith(tb, tb.TempDir(), votelog.EmbeddedConfig{})
	if always, _ := l.Emb.Sync(); !always {
		tb.Fatal("the test log does not sync always")
	}
	return &env{emb: l.Emb, nc: l.NC, js: l.JS, cat: l.Catalog(tb)}
}

// serviceWith is env.service with cfg (Shards defaults to 4).
func (e *env) serviceWith(tb testing.TB, cfg ingest.Config) *ingest.Service {
	tb.Helper()
	if cfg.Shards == 0 {
		cfg.Shards = 4
	}
	s, err := ingest.New(e.nc, e.cat, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	if err := s.Rebuild(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return s
}

// logMsg is one message of the log: its subject and the votes in it.
type logMsg struct {
	subject string
	votes   []votelog.Record
}

// readLog returns every message of the log, in order.
func readLog(tb testing.TB, js jetstream.JetStream) []logMsg {
	tb.Helper()
	ctx := context.Background()
	last, err := votelog.LastSeq(ctx, js)
	if err != nil {
		tb.Fatal(err)
	}
	if last == 0 {
		return nil
	}
	cons, err := js.OrderedConsumer(ctx, votelog.StreamName, jetstream.OrderedConsumerConfig{})
	if err != nil {
		tb.Fatal(err)
	}
	var (
		out []logMsg
		dec votelog.Decoder
		r   votelog.Record
	)
	for uint64(len(out)) < last {
		m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			tb.Fatalf("read message %d of %d: %v", len(out)+1, last, err)
		}
		msg := logMsg{subject: m.Subject()}
		err = dec.Each(&r, m.Data(), func(_ int, err error) error {
			if err == nil {
				r.Options, r.Voter = slices.Clone(r.Options), slices.Clone(r.Voter)
				msg.votes = append(msg.votes, r)
			}
			return err
		})
		if err != nil {
			tb.Fatalf("message %d: %v", len(out)+1, err)
		}
		out = append(out, msg)
	}
	return out
}

// votesIn returns the vote IDs in msgs, checking that every message's votes
// are of the poll its subject names.
func votesIn(tb testing.TB, msgs []logMsg) map[string]bool {
	tb.Helper()
	ids := map[string]bool{}
	for i, m := range msgs {
		_, pollID, ok := votelog.ParseVoteSubject(m.subject)
		if !ok {
			tb.Fatalf("message %d on subject %q", i+1, m.subject)
		}
		for _, r := range m.votes {
			if r.PollID != pollID {
				tb.Fatalf("message %d on %s holds a vote of poll %s", i+1, m.subject, r.PollID)
			}
			if ids[r.VoteID] {
				tb.Fatalf("vote %s twice in the log", r.VoteID)
			}
			ids[r.VoteID] = true
		}
	}
	return ids
}

// vote casts one vote and returns its answer.
func vote(s *ingest.Service, ctx context.Context, pollID, voter string) (ingest.Accepted, error) {
	return s.Vote(ctx, ingest.Request{PollID: pollID, Options: []string{"a"}, Voter: voter})
}

// TestGroupCommitPacksConcurrentVotes: many concurrent single votes on one
// poll are all accepted, each with its own ID, and every one is in the log
// once; the log holds fewer messages than votes, since the votes arriving
// while a message is in flight share the next one.
func TestGroupCommitPacksConcurrentVotes(t *testing.T) {
	e := newSyncedEnv(t)
	s := e.service(t)
	p := e.poll(t, poll.DedupeDevice)
	const n = 500
	ids := make([]string, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			acc, err := vote(s, context.Background(), p.ID, fmt.Sprintf("d%d", i))
			ids[i], errs[i] = acc.VoteID, err
		})
	}
	close(start)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	msgs := readLog(t, e.js)
	logged := votesIn(t, msgs)
	for i, id := range ids {
		if !logged[id] {
			t.Fatalf("vote %d (%s) was accepted but is not in the log", i, id)
		}
	}
	if len(logged) != n {
		t.Fatalf("%d votes in the log, want %d", len(logged), n)
	}
	if len(msgs) >= n {
		t.Fatalf("%d log messages for %d concurrent votes: none shared a message", len(msgs), n)
	}
	t.Logf("%d votes in %d log messages", n, len(msgs))
	// The votes are counted against their voters as well.
	if _, err := vote(s, context.Background(), p.ID, "d7"); !errors.Is(err, poll.ErrAlreadyVoted) {
		t.Fatalf("a voter of a pack voted again: %v", err)
	}
}

// TestLoneVoteGoesAtOnce: a vote on a poll with nothing in flight is
// published at once and answered by its own message, without waiting for
// any flush: with every flush held, votes on idle polls are still
// answered, one message each. One after another, votes on one poll are one
// message each too.
func TestLoneVoteGoesAtOnce(t *testing.T) {
	e := newSyncedEnv(t)
	s := e.service(t)
	release := ingest.HoldGroupCommit(s)
	defer release()
	ctx := context.Background()
	var polls []string
	for range 5 {
		p := e.poll(t, poll.DedupeNone)
		polls = append(polls, p.ID)
		if _, err := vote(s, ctx, p.ID, ""); err != nil {
			t.Fatalf("a lone vote on an idle poll: %v", err)
		}
		if q := ingest.GroupCommitQueued(s); q != 0 {
			t.Fatalf("%d votes queued", q)
		}
	}
	release()
	seq := e.poll(t, poll.DedupeNone)
	for range 10 {
		if _, err := vote(s, ctx, seq.ID, ""); err != nil {
			t.Fatal(err)
		}
	}
	msgs := readLog(t, e.js)
	votesIn(t, msgs)
	if len(msgs) != 15 {
		t.Fatalf("%d log messages for 15 lone votes, want 15", len(msgs))
	}
	for i, m := range msgs {
		if len(m.votes) != 1 {
			t.Fatalf("message %d holds %d votes", i+1, len(m.votes))
		}
	}
}

// TestGroupCommitKeepsPollsApart: the votes waiting on two polls go in two
// packs, one on each poll's subject.
func TestGroupCommitKeepsPollsApart(t *testing.T) {
	e := newSyncedEnv(t)
	s := e.service(t)
	release := ingest.HoldGroupCommit(s)
	defer release()
	ctx := context.Background()
	a, b := e.poll(t, poll.DedupeDevice), e.poll(t, poll.DedupeDevice)
	for _, p := range []*poll.Poll{a, b} {
		if _, err := vote(s, ctx, p.ID, "first"); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for _, p := range []*poll.Poll{a, b} {
		for i := range 3 {
			wg.Go(func() {
				_, err := vote(s, ctx, p.ID, fmt.Sprintf("v%d", i))
				errs <- err
			})
		}
	}
	testsvc.Eventually(t, 10*time.Second, "6 votes queued", func() bool { return ingest.GroupCommitQueued(s) == 6 })
	release()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	msgs := readLog(t, e.js)
	if got := len(votesIn(t, msgs)); got != 8 {
		t.Fatalf("%d votes in the log, want 8", got)
	}
	if len(msgs) != 4 {
		t.Fatalf("%d log messages, want 4: a lone vote and a pack of 3 for each poll", len(msgs))
	}
	for _, m := range msgs[2:] {
		if len(m.votes) != 3 {
			t.Fatalf("a pack of %d votes on %s, want 3", len(m.votes), m.subject)
		}
	}
}

// TestRefusedPackRefusesEachVote: when the log refuses a pack, each of its
// votes is answered 503 and its voter's claim released, so that each voter
// may vote again.
func TestRefusedPackRefusesEachVote(t *testing.T) {
	e := newSyncedEnv(t)
	s := e.service(t)
	release := ingest.HoldGroupCommit(s)
	defer release()
	ctx := context.Background()
	p := e.poll(t, poll.DedupeDevice)
	if _, err := vote(s, ctx, p.ID, "first"); err != nil {
		t.Fatal(err)
	}
	// The log takes single votes from now on, but no pack of three.
	stream, err := e.js.Stream(ctx, votelog.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	first, err := stream.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	// The limit counts headers too (every message carries its message ID):
	// a single vote's size with a little room, far under a pack of three.
	hdr := len("NATS/1.0\r\n\r\n")
	for k, vs := range first.Header {
		for _, v := range vs {
			hdr += len(k) + len(v) + len(": \r\n")
		}
	}
	cfg := stream.CachedInfo().Config
	cfg.MaxMsgSize = int32(len(first.Data) + hdr + 16)
	if _, err := e.js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	voters := []string{"b", "c", "d"}
	errs := make([]error, len(voters))
	var wg sync.WaitGroup
	for i, v := range voters {
		wg.Go(func() { _, errs[i] = vote(s, ctx, p.ID, v) })
	}
	testsvc.Eventually(t, 10*time.Second, "3 votes queued", func() bool { return ingest.GroupCommitQueued(s) == 3 })
	release()
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, poll.ErrOverloaded) {
			t.Fatalf("voter %s of the refused pack: %v, want overloaded", voters[i], err)
		}
	}
	for _, v := range voters {
		if _, err := vote(s, ctx, p.ID, v); err != nil {
			t.Fatalf("voter %s of the refused pack votes again: %v", v, err)
		}
	}
	msgs := readLog(t, e.js)
	if got := len(votesIn(t, msgs)); got != 4 || len(msgs) != 4 {
		t.Fatalf("%d votes in %d log messages, want 4 single votes", got, len(msgs))
	}
}

// TestQueuedVoteLeavesWithItsClient: a queued vote whose client goes away
// before it is published leaves the queue, is never stored, and its voter
// may vote again.
func TestQueuedVoteLeavesWithItsClient(t *testing.T) {
	e := newSyncedEnv(t)
	s := e.service(t)
	release := ingest.HoldGroupCommit(s)
	defer release()
	ctx := context.Background()
	p := e.poll(t, poll.DedupeDevice)
	if _, err := vote(s, ctx, p.ID, "first"); err != nil {
		t.Fatal(err)
	}
	gone, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := vote(s, gone, p.ID, "leaver")
		done <- err
	}()
	testsvc.Eventually(t, 10*time.Second, "the vote queued", func() bool { return ingest.GroupCommitQueued(s) == 1 })
	cancel()
	if err := <-done; !errors.Is(err, poll.ErrOverloaded) {
		t.Fatalf("a queued vote whose client went away: %v, want overloaded", err)
	}
	if q := ingest.GroupCommitQueued(s); q != 0 {
		t.Fatalf("%d votes still queued", q)
	}
	release()
	if _, err := vote(s, ctx, p.ID, "leaver"); err != nil {
		t.Fatalf("the voter votes again: %v", err)
	}
	msgs := readLog(t, e.js)
	if got := len(votesIn(t, msgs)); got != 2 {
		t.Fatalf("%d votes in the log, want 2", got)
	}
}

// TestGroupCommitRespectsMaxPending: past MaxPending queued votes, a vote
// is refused at once, and its voter may vote again later.
func TestGroupCommitRespectsMaxPending(t *testing.T) {
	e := newSyncedEnv(t)
	s := e.serviceWith(t, ingest.Config{MaxPending: 2})
	release := ingest.HoldGroupCommit(s)
	defer release()
	ctx := context.Background()
	p := e.poll(t, poll.DedupeDevice)
	if _, err := vote(s, ctx, p.ID, "first"); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 2)
	for _, v := range []string{"b", "c"} {
		go func() {
			_, err := vote(s, ctx, p.ID, v)
			errs <- err
		}()
	}
	testsvc.Eventually(t, 10*time.Second, "2 votes queued", func() bool { return ingest.GroupCommitQueued(s) == 2 })
	if _, err := vote(s, ctx, p.ID, "d"); !errors.Is(err, poll.ErrOverloaded) {
		t.Fatalf("a vote past MaxPending: %v, want overloaded", err)
	}
	release()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if _, err := vote(s, ctx, p.ID, "d"); err != nil {
		t.Fatalf("the refused voter votes again: %v", err)
	}
}

// TestKeyedVotesJoinPacks: votes with idempotency keys wait with the others
// and share the next message; a retry of one of them is recognised by the
// key registry and adds nothing to the log.
func TestKeyedVotesJoinPacks(t *testing.T) {
	e := newSyncedEnv(t)
	s := e.service(t)
	release := ingest.HoldGroupCommit(s)
	defer release()
	ctx := context.Background()
	p := e.poll(t, poll.DedupeNone)
	if _, err := vote(s, ctx, p.ID, ""); err != nil {
		t.Fatal(err)
	}
	type answer struct {
		acc ingest.Accepted
		err error
	}
	answers := make(chan answer, 2)
	for _, key := range []string{"k1", "k2"} {
		go func() {
			acc, err := s.Vote(ctx, ingest.Request{PollID: p.ID, Options: []string{"b"}, IdempotencyKey: key})
			answers <- answer{acc, err}
		}()
	}
	testsvc.Eventually(t, 10*time.Second, "both keyed votes to queue", func() bool { return ingest.GroupCommitQueued(s) == 2 })
	release()
	ids := map[string]bool{}
	for range 2 {
		a := <-answers
		if a.err != nil {
			t.Fatalf("a keyed vote: %v", a.err)
		}
		ids[a.acc.VoteID] = true
	}
	again, err := s.Vote(ctx, ingest.Request{PollID: p.ID, Options: []string{"b"}, IdempotencyKey: "k1"})
	if err != nil || !ids[again.VoteID] {
		t.Fatalf("retry = %+v, %v; want one of the vote IDs %v", again, err, ids)
	}
	msgs := readLog(t, e.js)
	if len(msgs) != 2 || len(votesIn(t, msgs)) != 3 {
		t.Fatalf("%d log messages holding %d votes, want 2 holding 3 (a lone vote, then a pack of the keyed two)", len(msgs), len(votesIn(t, msgs)))
	}
}

// TestBatchJoinsTheQueue: a batch's keyless votes on a poll with a message
// in flight wait and share the next message with the single votes waiting
// beside them.
func TestBatchJoinsTheQueue(t *testing.T) {
	e := newSyncedEnv(t)
	s := e.service(t)
	release := ingest.HoldGroupCommit(s)
	defer release()
	ctx := context.Background()
	p := e.poll(t, poll.DedupeDevice)
	if _, err := vote(s, ctx, p.ID, "first"); err != nil {
		t.Fatal(err)
	}
	single := make(chan error, 1)
	go func() {
		_, err := vote(s, ctx, p.ID, "single")
		single <- err
	}()
	testsvc.Eventually(t, 10*time.Second, "the single vote queued", func() bool { return ingest.GroupCommitQueued(s) == 1 })
	batch := make(chan []ingest.Outcome, 1)
	go func() {
		batch <- s.VoteBatch(ctx, []ingest.Request{
			{PollID: p.ID, Options: []string{"a"}, Voter: "b1"},
			{PollID: p.ID, Options: []string{"b"}, Voter: "b2"},
		})
	}()
	testsvc.Eventually(t, 10*time.Second, "the batch queued", func() bool { return ingest.GroupCommitQueued(s) == 3 })
	release()
	if err := <-single; err != nil {
		t.Fatal(err)
	}
	for i, o := range <-batch {
		if o.Err != nil {
			t.Fatalf("batch vote %d: %v", i, o.Err)
		}
	}
	msgs := readLog(t, e.js)
	if len(msgs) != 2 || len(msgs[1].votes) != 3 {
		t.Fatalf("%d log messages, want the first vote and one pack of 3", len(msgs))
	}
}

// BenchmarkGroupCommit measures single votes with many in flight on one
// poll, on a log that flushes every message to disk (always) and on one
// that flushes every 2 minutes: the price of the flush once votes share
// it. It reports votes/s and the votes a log message held on average.
func BenchmarkGroupCommit(b *testing.B) {
	for _, sync := range []struct {
		name string
		cfg  votelog.EmbeddedConfig
	}{
		{"always", votelog.EmbeddedConfig{}},
		{"2m", votelog.EmbeddedConfig{SyncInterval: 2 * time.Minute}},
	} {
		b.Run(sync.name, func(b *testing.B) {
			l := testsvc.StartLogWith(b, b.TempDir(), sync.cfg)
			e := &env{emb: l.Emb, nc: l.NC, js: l.JS, cat: l.Catalog(b)}
			s := e.service(b)
			p := e.poll(b, poll.DedupeNone)
			ctx := context.Background()
			before, err := votelog.LastSeq(ctx, e.js)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetParallelism(64)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := vote(s, ctx, p.ID, ""); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			after, err := votelog.LastSeq(ctx, e.js)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "votes/s")
			if after > before {
				b.ReportMetric(float64(b.N)/float64(after-before), "votes/msg")
			}
		})
	}
}
