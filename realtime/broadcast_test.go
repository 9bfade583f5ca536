package realtime

import (
	"context"
	"testing"
	"time"

	"github.com/pollcast/pollcast/internal/testsvc"
	"github.com/pollcast/pollcast/poll"
)

// newBareTopic returns a hub on a real catalog and a topic of a new poll
// with n in-memory viewers (no sockets): what a broadcast costs by itself.
func newBareTopic(tb testing.TB, n int, vis poll.Visibility) (*topic, []*viewer) {
	tb.Helper()
	l := testsvc.StartLog(tb)
	cat := l.Catalog(tb)
	h, err := NewHub(l.NC, cat, func(context.Context, string) (poll.Counts, error) { return poll.Counts{}, nil }, HubConfig{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(h.Close)
	p, err := poll.New(poll.CreateInput{Question: "Q", Options: []poll.OptionInput{{Label: "A"}, {Label: "B"}},
		ResultsVisibility: vis}, "owner", time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	if err := cat.CreatePoll(context.Background(), p); err != nil {
		tb.Fatal(err)
	}
	t := newTopic(h, p.ID)
	vs := make([]*viewer, n)
	for i := range vs {
		vs[i] = newViewer(Viewer{Owner: i%2 == 1})
		t.addLocked(vs[i])
	}
	return t, vs
}

// TestBroadcastEncodesOnce proves invariant 4's second half: one update is
// one encoding, and every viewer's mailbox holds the same bytes.
func TestBroadcastEncodesOnce(t *testing.T) {
	tp, vs := newBareTopic(t, 100, poll.VisibleAfterClose)
	tp.mu.Lock()
	tp.counts = poll.Counts{Total: 3, Version: 3, Options: map[string]int64{"a": 3}}
	tp.broadcastLocked()
	tp.mu.Unlock()
	var shared *outMsg
	for i, v := range vs {
		m := v.state.Load()
		if i%2 == 0 { // not an owner, results after close: hidden
			if m != hiddenMsg {
				t.Fatalf("viewer %d got %s", i, m.data)
			}
			continue
		}
		if shared == nil {
			shared = m
		}
		if m != shared {
			t.Fatalf("viewer %d got its own encoding", i)
		}
	}
	if shared == nil || shared.event != "results" {
		t.Fatalf("owners got %v", shared)
	}
	// Newest wins: a second update replaces the unsent first one.
	tp.mu.Lock()
	tp.counts.Version, tp.counts.Total = 4, 4
	tp.broadcastLocked()
	tp.mu.Unlock()
	if m := vs[1].state.Load(); m == shared || len(vs[1].wake) != 1 {
		t.Fatal("the mailbox did not take the newest state, or queued more than one wake-up")
	}
}

// TestCrowdedPollIsServedInLanes: a poll with more viewers than LaneSize
// gets new results a lane at a time, the lanes taking turns over the
// poll's interval, and every viewer gets them within it.
func TestCrowdedPollIsServedInLanes(t *testing.T) {
	const n = 2000 // four lanes of 500
	tp, vs := newBareTopic(t, n, poll.VisibleAlways)
	posted := func() int {
		got := 0
		for _, v := range vs {
			if v.state.Load() != nil {
				got++
			}
		}
		return got
	}
	tp.mu.Lock()
	if len(tp.lanes) != 4 {
		t.Fatalf("%d viewers in %d lanes", n, len(tp.lanes))
	}
	tp.counts = poll.Counts{Total: 1, Version: 1, Options: map[string]int64{"a": 1}}
	tp.scheduleLocked()
	first := posted()
	tp.mu.Unlock()
	if first != n/4 {
		t.Fatalf("the first turn posted to %d viewers, want one lane of %d", first, n/4)
	}
	start := time.Now()
	testsvc.Eventually(t, 5*time.Second, "every lane to get the results", func() bool {
		tp.mu.Lock()
		defer tp.mu.Unlock()
		return posted() == n
	})
	// Three more turns, each a quarter of the 100 ms interval apart.
	if took := time.Since(start); took < 50*time.Millisecond {
		t.Fatalf("the other lanes got the results %v after the first: not in turns", took)
	}
}

// BenchmarkBroadcast10000 measures one update fanned out to 10,000 viewers
// that never drain their mailboxes: one encoding and 10,000 pointer swaps.
func BenchmarkBroadcast10000(b *testing.B) {
	tp, _ := newBareTopic(b, 10000, poll.VisibleAlways)
	b.ReportAllocs()
	for b.Loop() {
		tp.mu.Lock()
		tp.counts.Version++
		tp.counts.Total++
		tp.broadcastLocked()
		tp.mu.Unlock()
	}
}
