package analytics

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pollcast/pollcast/internal/testsvc"
	"github.com/pollcast/pollcast/votelog"
)

// TestPurgeWithRowsOnTheirWay: rows of a poll that the sink read from the
// log before the purge and holds in its batch are not in the store once
// the purge is done, nor after the sink stores its batch: the purge waits
// until the store has passed the poll's mark before it deletes the rows.
// The other poll's rows all stay.
func TestPurgeWithRowsOnTheirWay(t *testing.T) {
	for name, open := range map[string]func(testing.TB) Store{"sqlite": newSQLite, "clickhouse": newClickHouse} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			const shards = 4
			js := testsvc.StartLog(t).JS
			s := open(t)
			vote := func(pollID, voteID string) uint64 {
				t.Helper()
				r := votelog.Record{VoteID: voteID, PollID: pollID, Options: []string{"a"}, Time: time.Now()}
				ack, err := js.Publish(ctx, votelog.VoteSubject(votelog.Shard(pollID, shards), pollID), r.Append(nil))
				if err != nil {
					t.Fatal(err)
				}
				return ack.Sequence
			}
			// The sink stores the first votes, then holds the next ones in
			// its batch for a while.
			vote("gone", "g1")
			first := vote("kept", "k1")
			sink, err := NewSink(js, s, SinkConfig{FlushInterval: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			sink.Start()
			t.Cleanup(sink.Close)
			testsvc.Eventually(t, 10*time.Second, "the first votes stored", func() bool { return sink.Stored() >= first })
			vote("gone", "g2")
			held := vote("kept", "k2")
			testsvc.Eventually(t, 10*time.Second, "the next votes read", func() bool { return sink.read.Load() >= held })
			if sink.Stored() >= held {
				t.Skip("the sink stored its batch before the purge began; nothing was on its way")
			}

			purge(t, js, s, shards, "gone")

			last := vote("kept", "k3")
			testsvc.Eventually(t, 10*time.Second, "a later vote stored", func() bool { return sink.Stored() >= last })
			if got := exportAll(t, s, "gone"); len(got) != 0 {
				t.Fatalf("rows of the purged poll came back: %+v", got)
			}
			var kept []string
			for _, v := range exportAll(t, s, "kept") {
				kept = append(kept, v.VoteID)
			}
			if len(kept) != 3 {
				t.Fatalf("rows of the other poll: %q, want k1, k2, k3", kept)
			}
		})
	}
}

// purge erases a poll from the log and the store as the web layer does:
// mark, wait for the store to pass the mark, delete the rows, purge the log.
func purge(t *testing.T, js jetstream.JetStream, s Store, shards int, pollID string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	mark, err := votelog.PublishPurgeMark(ctx, js, shards, pollID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := WaitPassed(ctx, s, mark); err != nil {
		t.Fatal(err)
	}
	if err := s.DeletePoll(ctx, pollID); err != nil {
		t.Fatal(err)
	}
	if err := votelog.PurgePoll(ctx, js, shards, pollID); err != nil {
		t.Fatal(err)
	}
}

// TestWaitPassedEndsWithCtx: a store that never gets to the sequence is
// waited for until ctx ends, with ctx's error.
func TestWaitPassedEndsWithCtx(t *testing.T) {
	s := newSQLite(t)
	if err := s.Insert(context.Background(), fixture()); err != nil {
		t.Fatal(err)
	}
	if err := WaitPassed(context.Background(), s, 5); err != nil {
		t.Fatalf("WaitPassed at the last sequence stored: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := WaitPassed(ctx, s, 6); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitPassed past the last sequence stored = %v, want DeadlineExceeded", err)
	}
}
