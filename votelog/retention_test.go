package votelog_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pollcast/pollcast/internal/testsvc"
	"github.com/pollcast/pollcast/votelog"
)

// publishN publishes n messages on shard's subject and returns the sequence of the last.
func publishN(tb testing.TB, js jetstream.JetStream, shard, n int) uint64 {
	tb.Helper()
	var last uint64
	for range n {
		ack, err := js.Publish(context.Background(), votelog.VoteSubject(shard, "p"), []byte("x"))
		if err != nil {
			tb.Fatal(err)
		}
		last = ack.Sequence
	}
	return last
}

func streamOf(tb testing.TB, js jetstream.JetStream) jetstream.Stream {
	tb.Helper()
	s, err := js.Stream(context.Background(), votelog.StreamName)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func firstSeq(tb testing.TB, js jetstream.JetStream) uint64 {
	tb.Helper()
	info, err := streamOf(tb, js).Info(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return info.State.FirstSeq
}

func TestFirstSince(t *testing.T) {
	ctx := context.Background()
	l := testsvc.StartLog(t)
	publishN(t, l.JS, 0, 10)
	// Wait until the clock has moved past the last stored message.
	m, err := streamOf(t, l.JS).GetMsg(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	testsvc.Eventually(t, time.Second, "the clock to move on", func() bool { return time.Now().After(m.Time) })
	mid := time.Now()
	publishN(t, l.JS, 1, 5)
	s := streamOf(t, l.JS)
	if err := s.DeleteMsg(ctx, 11); err != nil { // a hole where the answer would be
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		since time.Time
		want  uint64
	}{
		{"all older", time.Now().Add(time.Hour), 16},
		{"all newer", mid.Add(-time.Hour), 1},
		{"split", mid, 11},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := votelog.FirstSince(ctx, s, 1, 15, tc.since)
			if err != nil || got != tc.want {
				t.Fatalf("FirstSince = %d, %v; want %d", got, err, tc.want)
			}
		})
	}
}

// TestTrimOnce: votes past the age leave the log, but never those a
// floor still needs; what was removed is recorded.
func TestTrimOnce(t *testing.T) {
	ctx := context.Background()
	l := testsvc.StartLog(t)
	if n, err := votelog.PurgedBelow(ctx, l.JS); err != nil || n != 0 {
		t.Fatalf("PurgedBelow of a new log = %d, %v", n, err)
	}
	publishN(t, l.JS, 0, 10)
	publishN(t, l.JS, 1, 10)
	need := uint64(8)
	failing := false
	cfg := votelog.RetentionConfig{MaxAge: time.Nanosecond, Floors: []votelog.Floor{
		{Name: "a fold", Need: func(context.Context) (uint64, error) {
			if failing {
				return 0, errors.New("cannot tell")
			}
			return need, nil
		}},
	}}
	if first, err := votelog.TrimOnce(ctx, l.JS, cfg); err != nil || first != 8 || firstSeq(t, l.JS) != 8 {
		t.Fatalf("trimmed to %d (%v), the log starts at %d; want 8", first, err, firstSeq(t, l.JS))
	}
	if n, _ := votelog.PurgedBelow(ctx, l.JS); n != 8 {
		t.Fatalf("PurgedBelow = %d, want 8", n)
	}
	failing, need = true, 100
	if _, err := votelog.TrimOnce(ctx, l.JS, cfg); err == nil || firstSeq(t, l.JS) != 8 {
		t.Fatalf("a floor that cannot tell: %v, the log starts at %d", err, firstSeq(t, l.JS))
	}
	failing = false
	if first, err := votelog.TrimOnce(ctx, l.JS, cfg); err != nil || first != 21 {
		t.Fatalf("trimmed to %d (%v), want everything gone", first, err)
	}
	cfg.MaxAge = time.Hour
	publishN(t, l.JS, 2, 3)
	if first, err := votelog.TrimOnce(ctx, l.JS, cfg); err != nil || first != 21 {
		t.Fatalf("young votes trimmed: the log starts at %d (%v)", first, err)
	}
}

// TestShardsNeed: a shard needs its first vote after its watermark; a
// shard with none needs nothing before the log's end.
func TestShardsNeed(t *testing.T) {
	ctx := context.Background()
	l := testsvc.StartLog(t)
	publishN(t, l.JS, 0, 5) // 1..5
	publishN(t, l.JS, 1, 5) // 6..10
	publishN(t, l.JS, 0, 2) // 11..12
	tests := []struct {
		name  string
		marks []uint64
		want  uint64
	}{
		{"caught up", []uint64{12, 10, 0}, 13},
		{"shard 0 behind, its next vote later", []uint64{5, 10}, 11},
		{"shard 1 at zero", []uint64{12, 0}, 6},
		{"shard 0 at zero", []uint64{0, 10}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := votelog.ShardsNeed(ctx, l.JS, tc.marks)
			if err != nil || got != tc.want {
				t.Fatalf("ShardsNeed = %d, %v; want %d", got, err, tc.want)
			}
		})
	}
}
