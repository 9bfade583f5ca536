package analytics

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pollcast/pollcast/internal/testsvc"
	"github.com/pollcast/pollcast/votelog"
)

// logVotes starts an in-process log holding n votes over a few polls.
func logVotes(tb testing.TB, n int) (jetstream.JetStream, uint64) {
	return logPacks(tb, n, 1)
}

// logPacks starts an in-process log holding n messages over a few polls,
// each a pack of size votes (one vote when size is 1).
func logPacks(tb testing.TB, n, size int) (jetstream.JetStream, uint64) {
	tb.Helper()
	js := testsvc.StartLog(tb).JS
	ctx := context.Background()
	var futs []jetstream.PubAckFuture
	recs := make([]votelog.Record, size)
	for i := range n {
		poll := fmt.Sprintf("poll%d", i%4)
		for j := range recs {
			recs[j] = votelog.Record{VoteID: fmt.Sprintf("v%d-%d", i, j), PollID: poll, Options: []string{"a"}, Time: time.Now(),
				Region: "local", Country: "DE", Device: "mobile", Referrer: "news.example.com"}
		}
		f, err := js.PublishAsync(votelog.VoteSubject(i%4, poll), votelog.AppendMessage(nil, recs))
		if err != nil {
			tb.Fatal(err)
		}
		futs = append(futs, f)
		if len(futs) == 8192 || i == n-1 {
			for _, f := range futs {
				select {
				case <-f.Ok():
				case err := <-f.Err():
					tb.Fatal(err)
				}
			}
			futs = futs[:0]
		}
	}
	last, err := votelog.LastSeq(ctx, js)
	if err != nil {
		tb.Fatal(err)
	}
	return js, last
}

func runSink(tb testing.TB, js jetstream.JetStream, s Store, last uint64) {
	tb.Helper()
	sink, err := NewSink(js, s, SinkConfig{FlushInterval: 50 * time.Millisecond})
	if err != nil {
		tb.Fatal(err)
	}
	sink.Start()
	defer sink.Close()
	deadline := time.Now().Add(5 * time.Minute)
	for sink.Stored() < last {
		if time.Now().After(deadline) {
			tb.Fatalf("sink stored up to %d of %d", sink.Stored(), last)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestSinkStoresEachVoteOnceAcrossRestarts(t *testing.T) {
	for name, open := range map[string]func(testing.TB) Store{"sqlite": newSQLite, "clickhouse": newClickHouse} {
		t.Run(name, func(t *testing.T) {
			js, last := logVotes(t, 5000)
			s := open(t)
			runSink(t, js, s, last)
			// A second sink (a restart) resumes after what is stored.
			runSink(t, js, s, last)
			count := 0
			for p := range 4 {
				if err := s.Export(context.Background(), fmt.Sprintf("poll%d", p), func(*Vote) error { count++; return nil }); err != nil {
					t.Fatal(err)
				}
			}
			if count != 5000 {
				t.Fatalf("%d rows stored, want 5000", count)
			}
		})
	}
}

// TestSinkStoresPackedVotes: every vote of a pack gets its row, once,
// across a restart, with its position in the message.
func TestSinkStoresPackedVotes(t *testing.T) {
	for name, open := range map[string]func(testing.TB) Store{"sqlite": newSQLite, "clickhouse": newClickHouse} {
		t.Run(name, func(t *testing.T) {
			const messages, size = 400, 7
			js, last := logPacks(t, messages, size)
			s := open(t)
			runSink(t, js, s, last)
			runSink(t, js, s, last)
			seen := map[string]bool{}
			for p := range 4 {
				if err := s.Export(context.Background(), fmt.Sprintf("poll%d", p), func(v *Vote) error {
					var i, j int
					if _, err := fmt.Sscanf(v.VoteID, "v%d-%d", &i, &j); err != nil || uint32(j) != v.Idx || seen[v.VoteID] {
						t.Fatalf("row %+v: index or vote id wrong, or stored twice", v)
					}
					seen[v.VoteID] = true
					return nil
				}); err != nil {
					t.Fatal(err)
				}
			}
			if len(seen) != messages*size {
				t.Fatalf("%d rows stored, want %d", len(seen), messages*size)
			}
		})
	}
}

// packMsg is a log message of n votes (a pack when n > 1) at stream
// sequence seq; packRows turns it into its rows as Sink.rowsOf will.
type packMsg struct {
	jetstream.Msg
	seq uint64
	n   int
}

func packRows(m jetstream.Msg, out []Vote) []Vote {
	p := m.(packMsg)
	for i := range p.n {
		out = append(out, Vote{Seq: p.seq, Idx: uint32(i), PollID: "p"})
	}
	return out
}

// insertLog is a Store that records the rows of each Insert as "seq/idx".
type insertLog struct {
	Store
	inserts chan []string
}

func (l insertLog) Insert(_ context.Context, votes []Vote) error {
	var rows []string
	for _, v := range votes {
		rows = append(rows, fmt.Sprintf("%d/%d", v.Seq, v.Idx))
	}
	l.inserts <- rows
	return nil
}

func TestSinkStoresWholeMessages(t *testing.T) {
	store := insertLog{inserts: make(chan []string, 10)}
	sink, err := NewSink(nil, store, SinkConfig{BatchSize: 5, FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	sink.maxInsert = 6
	ctx, cancel := context.WithCancel(context.Background())
	msgs := make(chan jetstream.Msg)
	done := make(chan error)
	go func() { done <- sink.drain(ctx, msgs, 2, packRows) }()
	for _, m := range []packMsg{
		{seq: 1, n: 3},                                 // stored already
		{seq: 3, n: 2}, {seq: 4, n: 2}, {seq: 5, n: 2}, // 6 votes: past BatchSize by less than a message
		{seq: 5, n: 2},                                 // read again
		{seq: 6, n: 1}, {seq: 7, n: 3}, {seq: 8, n: 3}, // 7 votes, over maxInsert: 8 starts the next batch
		{seq: 9, n: 2},
		{seq: 10, n: 1}, // waits for FlushInterval
	} {
		msgs <- m
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("drain returned %v", err)
	}
	close(store.inserts)
	var got [][]string
	for rows := range store.inserts {
		got = append(got, rows)
	}
	want := [][]string{
		{"3/0", "3/1", "4/0", "4/1", "5/0", "5/1"},
		{"6/0", "7/0", "7/1", "7/2"},
		{"8/0", "8/1", "8/2", "9/0", "9/1"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("inserts:\n got %q\nwant %q", got, want)
	}
	if sink.Stored() != 9 {
		t.Fatalf("Stored = %d, want 9", sink.Stored())
	}
}

// benchmarkSink measures the sink draining a log of 500,000 votes into a
// fresh store: rows/s is the figure; cpu-ns/row, the CPU time of this
// process (sink, SQLite, the in-process log; not a ClickHouse server) per
// row, is steadier on a shared machine.
func benchmarkSink(b *testing.B, open func(testing.TB) Store) {
	const n = 500_000
	js, last := logVotes(b, n)
	var cpu time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		s := open(b)
		b.StartTimer()
		start := testsvc.CPUTime()
		runSink(b, js, s, last)
		cpu += testsvc.CPUTime() - start
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/(float64(n)*float64(b.N)), "cpu-ns/row")
}

func BenchmarkSinkSQLite(b *testing.B)     { benchmarkSink(b, newSQLite) }
func BenchmarkSinkClickHouse(b *testing.B) { benchmarkSink(b, newClickHouse) }
