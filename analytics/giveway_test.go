package analytics

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	for _, tc := range []struct {
		name      string
		data      string
		busy, all uint64
		ok        bool
	}{
		{"linux", "cpu  100 5 50 800 20 3 2 10 7 1\ncpu0 50 2 25 400 10 1 1 5 3 0\n", 170, 990, true},
		{"old kernel, four fields", "cpu 10 0 10 80\n", 20, 100, true},
		{"not the cpu line", "intr 1 2 3\n", 0, 0, false},
		{"garbage", "cpu 10 x 10 80\n", 0, 0, false},
		{"empty", "", 0, 0, false},
		{"all zero", "cpu 0 0 0 0\n", 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			busy, all, ok := parseProcStat([]byte(tc.data))
			if busy != tc.busy || all != tc.all || ok != tc.ok {
				t.Fatalf("parseProcStat = %d, %d, %v; want %d, %d, %v", busy, all, ok, tc.busy, tc.all, tc.ok)
			}
		})
	}
}

func TestCPULoadSaturated(t *testing.T) {
	var stat string
	var readErr error
	l := &cpuLoad{read: func() ([]byte, error) { return []byte(stat), readErr }}
	for i, step := range []struct {
		stat string
		err  error
		want bool
	}{
		{"cpu 100 0 0 100 0", nil, false},  // the first look has nothing to compare with
		{"cpu 195 0 0 105 0", nil, true},   // 95 of 100 ticks busy
		{"cpu 245 0 0 155 0", nil, false},  // 50 of 100
		{"cpu 345 0 0 155 0", nil, true},   // 100 of 100
		{"cpu 350 0 0 155 95", nil, false}, // waiting for the disk is not busy
		{"cpu 10 0 0 10 0", nil, false},    // counters went back
		{"", errors.New("no /proc"), false},
	} {
		stat, readErr = step.stat, step.err
		if got := l.saturated(); got != step.want {
			t.Fatalf("step %d (%q): saturated = %v, want %v", i, step.stat, got, step.want)
		}
	}
}

// TestSinkGivingWayStoresEveryVote: a sink that gives way after every
// insert still stores every vote, once, and takes longer only by the time
// its inserts took.
func TestSinkGivingWayStoresEveryVote(t *testing.T) {
	js, last := logVotes(t, 3000)
	s := newSQLite(t)
	sink, err := NewSink(js, s, SinkConfig{BatchSize: 500, FlushInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	sink.busy = func() bool { calls++; return true }
	sink.Start()
	defer sink.Close()
	deadline := time.Now().Add(2 * time.Minute)
	for sink.Stored() < last {
		if time.Now().After(deadline) {
			t.Fatalf("sink stored up to %d of %d", sink.Stored(), last)
		}
		time.Sleep(time.Millisecond)
	}
	sink.Close()
	if calls < 2 {
		t.Fatalf("the sink asked %d times whether to give way; want once an insert", calls)
	}
	count := 0
	for p := range 4 {
		if err := s.Export(context.Background(), fmt.Sprintf("poll%d", p), func(*Vote) error { count++; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if count != 3000 {
		t.Fatalf("%d rows stored, want 3000", count)
	}
}
