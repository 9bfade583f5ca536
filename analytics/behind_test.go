package analytics

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pollcast/pollcast/internal/testsvc"
	"github.com/pollcast/pollcast/votelog"
)

// TestSinkTrimsRowsAheadOfTheLog: when the log loses its tail (here: a new,
// empty log beside a store that copied an old one), the rows past the
// log's end are removed, found at start and while running, and the store
// then holds exactly the votes of the new log, none skipped. (A log that
// regrew past the stored sequence before the sink looked is not told apart
// by sequence: see behind.go.)
func TestSinkTrimsRowsAheadOfTheLog(t *testing.T) {
	for name, open := range map[string]func(testing.TB) Store{"sqlite": newSQLite, "clickhouse": newClickHouse} {
		t.Run(name+"/at start", func(t *testing.T) {
			js, last := logVotes(t, 300)
			s := open(t)
			runSink(t, js, s, last)

			newVoteLog(t, js)
			sink := startSink(t, js, s)
			testsvc.Eventually(t, time.Minute, "the old log's rows removed", func() bool { return rowsOf(t, s) == "" && sink.Stored() == 0 })
			last = appendVotes(t, js, "new", 120)
			testsvc.Eventually(t, time.Minute, "the new log stored", func() bool { return sink.Stored() >= last })
			checkOnly(t, s, "new", 120)
		})
		t.Run(name+"/while running", func(t *testing.T) {
			js, last := logVotes(t, 300)
			s := open(t)
			sink := startSink(t, js, s)
			testsvc.Eventually(t, time.Minute, "the old log stored", func() bool { return sink.Stored() >= last })

			newVoteLog(t, js)
			testsvc.Eventually(t, time.Minute, "the old log's rows removed", func() bool { return rowsOf(t, s) == "" && sink.Stored() == 0 })
			last = appendVotes(t, js, "new", 120)
			testsvc.Eventually(t, time.Minute, "the new log stored", func() bool { return sink.Stored() >= last })
			checkOnly(t, s, "new", 120)
			last = appendVotes(t, js, "more", 30)
			testsvc.Eventually(t, time.Minute, "the new log followed", func() bool { return sink.Stored() >= last })
			if got := rowsOf(t, s); got != "more:30 new:120" {
				t.Fatalf("rows %s, want more:30 new:120", got)
			}
		})
	}
}

// startSink starts a sink that checks the log's end often, stopped at the
// end of the test.
func startSink(tb testing.TB, js jetstream.JetStream, s Store) *Sink {
	tb.Helper()
	sink, err := NewSink(js, s, SinkConfig{FlushInterval: 20 * time.Millisecond, LogCheck: 20 * time.Millisecond})
	if err != nil {
		tb.Fatal(err)
	}
	sink.Start()
	tb.Cleanup(sink.Close)
	return sink
}

// newVoteLog replaces the VOTES stream by a new, empty one.
func newVoteLog(tb testing.TB, js jetstream.JetStream) {
	tb.Helper()
	ctx := context.Background()
	if err := js.DeleteStream(ctx, votelog.StreamName); err != nil {
		tb.Fatal(err)
	}
	if _, err := votelog.EnsureStream(ctx, js, votelog.StreamConfig{}); err != nil {
		tb.Fatal(err)
	}
}

// appendVotes appends n votes with IDs tag-<i> over the polls of logPacks
// and returns the log's last sequence.
func appendVotes(tb testing.TB, js jetstream.JetStream, tag string, n int) uint64 {
	tb.Helper()
	ctx := context.Background()
	for i := range n {
		poll := fmt.Sprintf("poll%d", i%4)
		r := votelog.Record{VoteID: fmt.Sprintf("%s-%d", tag, i), PollID: poll, Options: []string{"a"}, Time: time.Now(), Region: "local"}
		if _, err := js.Publish(ctx, votelog.VoteSubject(i%4, poll), r.Append(nil)); err != nil {
			tb.Fatal(err)
		}
	}
	last, err := votelog.LastSeq(ctx, js)
	if err != nil {
		tb.Fatal(err)
	}
	return last
}

// rowsOf sums up the rows of the polls of logPacks by vote ID tag (the
// part before the first "-"), "tag:count" sorted by tag.
func rowsOf(tb testing.TB, s Store) string {
	tb.Helper()
	byTag := map[string]int{}
	for p := range 4 {
		if err := s.Export(context.Background(), fmt.Sprintf("poll%d", p), func(v *Vote) error {
			tag, _, _ := strings.Cut(v.VoteID, "-")
			byTag[tag]++
			return nil
		}); err != nil {
			tb.Fatal(err)
		}
	}
	var parts []string
	for tag, n := range byTag {
		parts = append(parts, fmt.Sprintf("%s:%d", tag, n))
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

// checkOnly checks that the store holds n rows, all of votes tagged tag.
func checkOnly(tb testing.TB, s Store, tag string, n int) {
	tb.Helper()
	if got, want := rowsOf(tb, s), fmt.Sprintf("%s:%d", tag, n); got != want {
		tb.Fatalf("rows %s, want %s", got, want)
	}
}
