package ingest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pollcast/pollcast/ingest"
	"github.com/pollcast/pollcast/internal/testsvc"
	"github.com/pollcast/pollcast/poll"
	"github.com/pollcast/pollcast/votelog"
)

// lossyEnv is a log on a NATS server reached through an ackProxy: ingest
// publishes through the proxy, the test reads the log directly.
type lossyEnv struct {
	js    jetstream.JetStream
	cat   *poll.Catalog
	proxy *ackProxy
	svc   *ingest.Service
}

// newLossyEnv starts the server, the stream with the given duplicate
// window (zero: the default), and an ingest service behind the proxy that
// waits publishTimeout for each acknowledgement.
func newLossyEnv(tb testing.TB, window, publishTimeout time.Duration) *lossyEnv {
	tb.Helper()
	url := testsvc.StartNATSServer(tb)
	nc, err := nats.Connect(url)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := votelog.EnsureStream(context.Background(), js, votelog.StreamConfig{DuplicateWindow: window}); err != nil {
		tb.Fatal(err)
	}
	cat, err := poll.OpenCatalog(context.Background(), js, poll.CatalogConfig{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(cat.Close)
	e := &lossyEnv{js: js, cat: cat, proxy: startAckProxy(tb, url)}
	pnc, err := nats.Connect(e.proxy.url())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pnc.Close)
	if e.svc, err = ingest.New(pnc, cat, ingest.Config{Shards: 4, PublishTimeout: publishTimeout}); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(e.svc.Close)
	if err := e.svc.Rebuild(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return e
}

func (e *lossyEnv) poll(tb testing.TB, dedupe poll.Dedupe) *poll.Poll {
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

// votesInLog returns the votes the log holds: every vote of every message.
func votesInLog(tb testing.TB, js jetstream.JetStream) map[string]int {
	tb.Helper()
	ctx := context.Background()
	last, err := votelog.LastSeq(ctx, js)
	if err != nil {
		tb.Fatal(err)
	}
	ids := map[string]int{}
	if last == 0 {
		return ids
	}
	cons, err := votelog.Reader(ctx, js, 0, votelog.AllVotes)
	if err != nil {
		tb.Fatal(err)
	}
	var (
		dec votelog.Decoder
		rec votelog.Record
	)
	for {
		msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			tb.Fatal(err)
		}
		_ = dec.Each(&rec, msg.Data(), func(_ int, err error) error {
			if err != nil {
				tb.Fatal(err)
			}
			ids[rec.VoteID]++
			return nil
		})
		if meta, _ := msg.Metadata(); meta.Sequence.Stream >= last {
			return ids
		}
	}
}

// checkOnce fails unless the log holds each of ids exactly once and no
// other vote.
func checkOnce(tb testing.TB, js jetstream.JetStream, ids ...string) {
	tb.Helper()
	got := votesInLog(tb, js)
	for _, id := range ids {
		if got[id] != 1 {
			tb.Errorf("vote %s is %d times in the log, want once (log: %v)", id, got[id], got)
		}
	}
	if len(got) != len(ids) {
		tb.Errorf("the log holds %d votes, want %d: %v", len(got), len(ids), got)
	}
}

// TestLostAckIsResolved: the log stores a vote and its acknowledgement is
// lost. Ingest learns the outcome and answers 202, the vote is in the log
// once, and its voter cannot vote again: for a keyed vote, a keyless one,
// and a pack of keyless votes.
func TestLostAckIsResolved(t *testing.T) {
	e := newLossyEnv(t, 0, 300*time.Millisecond)
	ctx := context.Background()
	dev, none := e.poll(t, poll.DedupeDevice), e.poll(t, poll.DedupeNone)
	var ids []string

	e.proxy.drop.Store(1)
	acc, err := e.svc.Vote(ctx, ingest.Request{PollID: dev.ID, Options: []string{"a"}, Voter: "d1", IdempotencyKey: "k1"})
	if err != nil {
		t.Fatalf("keyed vote whose ack was lost: %v", err)
	}
	ids = append(ids, acc.VoteID)
	if _, err := e.svc.Vote(ctx, ingest.Request{PollID: dev.ID, Options: []string{"b"}, Voter: "d1"}); !errors.Is(err, poll.ErrAlreadyVoted) {
		t.Fatalf("the voter of a stored vote votes again: %v", err)
	}
	again, err := e.svc.Vote(ctx, ingest.Request{PollID: dev.ID, Options: []string{"a"}, Voter: "d1", IdempotencyKey: "k1"})
	if err != nil || again.VoteID != acc.VoteID {
		t.Fatalf("retry = %+v, %v; want vote %s", again, err, acc.VoteID)
	}

	e.proxy.drop.Store(1)
	acc, err = e.svc.Vote(ctx, ingest.Request{PollID: dev.ID, Options: []string{"a"}, Voter: "d2"})
	if err != nil {
		t.Fatalf("keyless vote whose ack was lost: %v", err)
	}
	ids = append(ids, acc.VoteID)
	if _, err := e.svc.Vote(ctx, ingest.Request{PollID: dev.ID, Options: []string{"b"}, Voter: "d2"}); !errors.Is(err, poll.ErrAlreadyVoted) {
		t.Fatalf("the voter of a stored keyless vote votes again: %v", err)
	}

	e.proxy.drop.Store(1)
	var reqs []ingest.Request
	for range 5 {
		reqs = append(reqs, ingest.Request{PollID: none.ID, Options: []string{"b"}})
	}
	for i, o := range e.svc.VoteBatch(ctx, reqs) {
		if o.Err != nil {
			t.Fatalf("vote %d of a pack whose ack was lost: %v", i, o.Err)
		}
		ids = append(ids, o.VoteID)
	}
	if n := e.proxy.dropped.Load(); n != 3 {
		t.Fatalf("the proxy lost %d acks, want 3", n)
	}
	checkOnce(t, e.js, ids...)
}

// TestGivingUpLeavesTheOutcomeToTheLog: a client stops waiting while no
// acknowledgement comes. It is not told 503 (the vote may be stored); its
// voter's claim holds meanwhile; once the log answers again, the vote is
// settled as stored, once.
func TestGivingUpLeavesTheOutcomeToTheLog(t *testing.T) {
	e := newLossyEnv(t, 0, 200*time.Millisecond)
	dev := e.poll(t, poll.DedupeDevice)
	e.proxy.drop.Store(-1)
	gone, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err := e.svc.Vote(gone, ingest.Request{PollID: dev.ID, Options: []string{"a"}, Voter: "d1", IdempotencyKey: "k1"})
	if err == nil || errors.Is(err, poll.ErrOverloaded) {
		t.Fatalf("vote of a client that stopped waiting = %v; want neither 202 nor 503", err)
	}
	ctx := context.Background()
	if _, err := e.svc.Vote(ctx, ingest.Request{PollID: dev.ID, Options: []string{"b"}, Voter: "d1", IdempotencyKey: "k2"}); !errors.Is(err, poll.ErrAlreadyVoted) {
		t.Fatalf("the voter votes again while the first vote's outcome is unknown: %v", err)
	}
	e.proxy.drop.Store(0)
	var acc ingest.Accepted
	testsvc.Eventually(t, 10*time.Second, "the retry to find the vote stored", func() bool {
		acc, err = e.svc.Vote(ctx, ingest.Request{PollID: dev.ID, Options: []string{"a"}, Voter: "d1", IdempotencyKey: "k1"})
		return err == nil
	})
	if _, err := e.svc.Vote(ctx, ingest.Request{PollID: dev.ID, Options: []string{"b"}, Voter: "d1", IdempotencyKey: "k3"}); !errors.Is(err, poll.ErrAlreadyVoted) {
		t.Fatalf("the voter votes again after the outcome was learned: %v", err)
	}
	checkOnce(t, e.js, acc.VoteID)
}

// TestOutcomeLearnedPastTheWindow: the log answers nothing for longer
// than its duplicate window. Ingest stops publishing again at half the
// window and then finds the vote in the log by its message ID: 202, once.
func TestOutcomeLearnedPastTheWindow(t *testing.T) {
	const window = 2 * time.Second
	e := newLossyEnv(t, window, 200*time.Millisecond)
	none := e.poll(t, poll.DedupeNone)
	e.proxy.drop.Store(-1) // every ack, to the end of the test
	start := time.Now()
	acc, err := e.svc.Vote(context.Background(), ingest.Request{PollID: none.ID, Options: []string{"a"}})
	if err != nil {
		t.Fatalf("vote whose acks are all lost: %v", err)
	}
	if took := time.Since(start); took < window {
		t.Fatalf("answered after %v, before the window passed", took)
	}
	if e.proxy.dropped.Load() < 2 {
		t.Fatalf("%d acks lost: the vote was not published again", e.proxy.dropped.Load())
	}
	checkOnce(t, e.js, acc.VoteID)
}
