package analytics

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pollcast/pollcast/internal/testsvc"
)

// insertVotes is n votes as the sink makes them of a log holding single
// votes and packs: four polls, a few values of each dimension, one vote in
// three in a pack of 100 sharing its poll, time and origin.
func insertVotes(n int) []Vote {
	regions := []string{"local", "eu", "us"}
	countries := []string{"DE", "FR", "US", "", "BR", "JP", "IN"}
	devices := []string{"mobile", "desktop", "tablet", "bot"}
	referrers := []string{"", "news.example.com", "blog.example.org", "t.co"}
	out := make([]Vote, 0, n)
	seq := uint64(0)
	for len(out) < n {
		seq++
		size := 1
		if seq%3 == 0 {
			size = min(100, n-len(out))
		}
		k := int(seq)
		for i := range size {
			out = append(out, Vote{Seq: seq, Idx: uint32(i), VoteID: fmt.Sprintf("01JD%020d", len(out)), PollID: fmt.Sprintf("poll%d", k%4),
				Options: []string{string(rune('a' + k%3))}, Time: t0.Add(time.Duration(seq) * time.Millisecond).Truncate(time.Second),
				Region: regions[k%len(regions)], Country: countries[k%len(countries)], Device: devices[k%len(devices)], Referrer: referrers[k%len(referrers)]})
		}
	}
	return out
}

// BenchmarkSQLiteInsert measures SQLiteStore.Insert alone, in batches of
// the sink's default size, into a fresh store: cpu-ns/row is the CPU time
// of the process per row stored.
func BenchmarkSQLiteInsert(b *testing.B) {
	const n, batch = 500_000, 50_000
	votes := insertVotes(n)
	ctx := context.Background()
	var cpu time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		s := newSQLite(b)
		b.StartTimer()
		start := testsvc.CPUTime()
		for i := 0; i < n; i += batch {
			if err := s.Insert(ctx, votes[i:min(i+batch, n)]); err != nil {
				b.Fatal(err)
			}
		}
		cpu += testsvc.CPUTime() - start
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/(float64(n)*float64(b.N)), "cpu-ns/row")
}
