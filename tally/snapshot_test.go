package tally

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"
)

// snapshotRoundTrip writes a snapshot of s and loads it into a new store.
func snapshotRoundTrip(tb testing.TB, s *MemoryStore, drop func(string) bool) *MemoryStore {
	tb.Helper()
	var buf bytes.Buffer
	if err := s.Snapshot().Write(&buf); err != nil {
		tb.Fatal(err)
	}
	loaded := NewMemoryStore()
	if err := loaded.LoadSnapshot(&buf, uint64(buf.Len()), drop); err != nil {
		tb.Fatal(err)
	}
	return loaded
}

// TestMemoryStoreSnapshot: a store loaded from a snapshot answers what the
// original does — counts, distinct voters, who voted, watermarks, deleted
// polls — and goes on from there like the original.
func TestMemoryStoreSnapshot(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	s := NewMemoryStore()
	p, q, gone := pollIn(1, "p"), pollIn(2, "q"), pollIn(1, "gone")
	voters := func(from, n int) [][16]byte {
		var vs [][16]byte
		for i := range n {
			vs = append(vs, [16]byte{byte(from + i), byte((from + i) >> 8), 7})
		}
		return vs
	}
	apply := func(s *MemoryStore, b Batch) {
		t.Helper()
		if err := s.Apply(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	apply(s, Batch{Shard: 1, Prev: 0, Last: 10, Polls: map[string]*PollDelta{
		p:    {Total: 1003, Options: map[string]int64{"a": 1000, "b": 3}, Voters: voters(0, 1000), Anonymous: 3, At: at},
		gone: {Total: 1, Options: map[string]int64{"a": 1}, At: at},
	}})
	apply(s, Batch{Shard: 2, Prev: 0, Last: 12, Polls: map[string]*PollDelta{
		q: {Total: 2, Options: map[string]int64{"b": 2}, Voters: [][16]byte{{}, {}}, At: at}, // the zero key, twice
	}})
	if err := s.DeletePoll(ctx, "deleted-before"); err != nil {
		t.Fatal(err)
	}
	loaded := snapshotRoundTrip(t, s, func(id string) bool { return id == gone })

	for _, id := range []string{p, q} {
		want, _ := s.Counts(ctx, id)
		got, _ := loaded.Counts(ctx, id)
		if got.Total != want.Total || got.Voters != want.Voters || got.Version != want.Version ||
			!got.UpdatedAt.Equal(want.UpdatedAt) || !maps.Equal(got.Options, want.Options) {
			t.Fatalf("poll %s: loaded %+v, want %+v", id, got, want)
		}
	}
	if c, _ := loaded.Counts(ctx, gone); c.Total != 0 {
		t.Fatalf("a poll dropped on load still counts %d", c.Total)
	}
	for shard, want := range map[int]uint64{1: 10, 2: 12, 3: 0} {
		if m, _ := loaded.Watermark(ctx, shard); m != want {
			t.Fatalf("shard %d watermark %d, want %d", shard, m, want)
		}
	}
	for i, v := range voters(0, 1000) {
		if ok, _ := loaded.HasVoter(ctx, p, v); !ok {
			t.Fatalf("voter %d of p forgotten", i)
		}
	}
	if ok, _ := loaded.HasVoter(ctx, p, voters(5000, 1)[0]); ok {
		t.Fatal("a voter who never voted")
	}
	if ok, _ := loaded.HasVoter(ctx, q, [16]byte{}); !ok {
		t.Fatal("the zero voter key forgotten")
	}
	// A stale batch is fenced off; the next one, and a repeat voter, count as in the original.
	if err := loaded.Apply(ctx, Batch{Shard: 1, Prev: 0, Last: 11}); !errors.Is(err, ErrFenced) {
		t.Fatalf("a batch from before the snapshot: %v", err)
	}
	next := Batch{Shard: 1, Prev: 10, Last: 20, Polls: map[string]*PollDelta{
		p: {Total: 2, Options: map[string]int64{"b": 2}, Voters: append(voters(999, 1), voters(1000, 1)...), At: at.Add(time.Second)},
	}}
	apply(s, next)
	apply(loaded, next)
	want, _ := s.Counts(ctx, p)
	got, _ := loaded.Counts(ctx, p)
	if got.Total != want.Total || got.Voters != want.Voters || got.Voters != 1004 {
		t.Fatalf("after the next batch: loaded %+v, original %+v", got, want)
	}
	if err := loaded.DeletePoll(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	if err := loaded.LoadSnapshot(bytes.NewReader(nil), 0, nil); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("loading into a used store: %v", err)
	}
}

// TestMemoryStoreSnapshotWhileApplying: snapshots taken while batches are
// applied on every shard are consistent: each poll's counts are exactly
// those of the batches up to its shard's watermark.
func TestMemoryStoreSnapshotWhileApplying(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryStore()
	const shards, batches = 4, 300
	var wg sync.WaitGroup
	for shard := range shards {
		wg.Go(func() {
			id := fmt.Sprintf("poll-%d", shard)
			for i := range batches {
				b := Batch{Shard: shard, Prev: uint64(i * 10), Last: uint64(i*10 + 10), Polls: map[string]*PollDelta{
					id: {Total: 3, Options: map[string]int64{"a": 3}, Voters: [][16]byte{{byte(shard), byte(i), byte(i >> 8)}}, Anonymous: 2},
				}}
				if err := s.Apply(ctx, b); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for range 20 {
		loaded := snapshotRoundTrip(t, s, nil)
		for shard := range shards {
			mark, _ := loaded.Watermark(ctx, shard)
			n := int64(mark / 10) // batches applied
			c, _ := loaded.Counts(ctx, fmt.Sprintf("poll-%d", shard))
			if c.Total != 3*n || c.Voters != 3*n || c.Options["a"] != 3*n {
				t.Fatalf("shard %d at watermark %d: counts %+v, want %d votes", shard, mark, c, 3*n)
			}
		}
	}
	wg.Wait()
}

// voterDelta is a poll's increment: total votes, of which one per listed
// voter key, the rest anonymous.
func voterDelta(total int64, opts map[string]int64, voters ...byte) *PollDelta {
	d := &PollDelta{Total: total, Options: opts, At: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
	for _, v := range voters {
		d.Voters = append(d.Voters, [16]byte{v})
	}
	d.Anonymous = total - int64(len(voters))
	return d
}

// TestMemoryStoreSnapshotKeepsShards: a store loaded from a snapshot knows
// the shard of each poll, so a reset of a shard ahead of the log still
// forgets that shard's polls, and only them.
func TestMemoryStoreSnapshotKeepsShards(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryStore()
	p, q, other := pollIn(5, "p"), pollIn(5, "q"), pollIn(6, "o")
	for _, b := range []Batch{
		{Shard: 5, Prev: 0, Last: 10, Polls: map[string]*PollDelta{
			p: voterDelta(3, map[string]int64{"a": 3}, 1, 2), q: voterDelta(1, map[string]int64{"b": 1}, 7),
		}},
		{Shard: 6, Prev: 0, Last: 12, Polls: map[string]*PollDelta{other: voterDelta(2, map[string]int64{"a": 2}, 1)}},
	} {
		if err := s.Apply(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	loaded := snapshotRoundTrip(t, s, nil)
	if reset, err := loaded.ResetShard(ctx, 5, 4); err != nil || !reset {
		t.Fatalf("ResetShard(5, 4) of a loaded shard at 10 = %v, %v; want true", reset, err)
	}
	for _, id := range []string{p, q} {
		if c, _ := loaded.Counts(ctx, id); c.Total != 0 || c.Voters != 0 || len(c.Options) != 0 {
			t.Fatalf("counts of %s after the reset of its shard %+v, want zero", id, c)
		}
	}
	if voted, _ := loaded.HasVoter(ctx, q, [16]byte{7}); voted {
		t.Fatal("a voter of a reset shard is still known")
	}
	if c, _ := loaded.Counts(ctx, other); c.Total != 2 {
		t.Fatalf("counts of the other shard's poll %+v, want total 2", c)
	}
	// Folded again from the start of the log, the shard counts once.
	if err := loaded.Apply(ctx, Batch{Shard: 5, Prev: 0, Last: 3, Polls: map[string]*PollDelta{p: voterDelta(2, map[string]int64{"a": 2}, 1)}}); err != nil {
		t.Fatal(err)
	}
	if c, _ := loaded.Counts(ctx, p); c.Total != 2 || c.Voters != 2 {
		t.Fatalf("counts of p folded again %+v, want total 2, voters 2", c)
	}
}

// TestMemoryStoreSnapshotWhileResetting: snapshots taken while a shard is
// folded and reset over and over hold the shard's watermark and polls
// both from before a reset or both from after: never the watermark of a
// fold without its counters.
func TestMemoryStoreSnapshotWhileResetting(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryStore()
	// Many shards, so that copying the watermarks takes a while, and the
	// one reset is the one the copy visits first: a reset that lands
	// during the copy then lands after its watermark was copied.
	for shard := range 20000 {
		if err := s.Apply(ctx, Batch{Shard: shard, Prev: 0, Last: 1}); err != nil {
			t.Fatal(err)
		}
	}
	var shard int
	s.marks.Range(func(k, _ any) bool { shard = k.(int); return false })
	if _, err := s.ResetShard(ctx, shard, 0); err != nil {
		t.Fatal(err)
	}
	p := "p"
	// One goroutine folds the shard, another resets it: a snapshot may
	// begin between the two.
	stop, reset, resetDone := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(reset)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := s.Apply(ctx, Batch{Shard: shard, Prev: 0, Last: 10, Polls: map[string]*PollDelta{p: voterDelta(3, map[string]int64{"a": 3})}}); err != nil {
				t.Error(err)
				return
			}
			reset <- struct{}{}
			<-resetDone
		}
	})
	wg.Go(func() {
		for range reset {
			if _, err := s.ResetShard(ctx, shard, 4); err != nil {
				t.Error(err)
			}
			resetDone <- struct{}{}
		}
	})
	defer wg.Wait()
	defer close(stop)
	for i := range 100 {
		loaded := snapshotRoundTrip(t, s, nil)
		mark, _ := loaded.Watermark(ctx, shard)
		c, _ := loaded.Counts(ctx, p)
		if want := map[uint64]int64{0: 0, 10: 3}[mark]; c.Total != want {
			t.Fatalf("snapshot %d: the shard at %d and its poll counting %d, want %d", i, mark, c.Total, want)
		}
	}
}

// BenchmarkMemoryStoreSnapshotPause measures how long a snapshot holds
// batches back (Snapshot's copy) on a store of 1 M distinct voters, and
// writing it.
func BenchmarkMemoryStoreSnapshotPause(b *testing.B) {
	ctx := context.Background()
	s := NewMemoryStore()
	const voters, polls = 1 << 20, 20
	for i := range voters / 4096 {
		d := &PollDelta{Total: 4096, Options: map[string]int64{"a": 4096}}
		for j := range 4096 {
			n := i*4096 + j
			d.Voters = append(d.Voters, [16]byte{byte(n), byte(n >> 8), byte(n >> 16), 1})
		}
		if err := s.Apply(ctx, Batch{Shard: 0, Prev: uint64(i), Last: uint64(i + 1), Polls: map[string]*PollDelta{fmt.Sprintf("p%d", i%polls): d}}); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("copy", func(b *testing.B) {
		for b.Loop() {
			_ = s.Snapshot()
		}
	})
	b.Run("copy+write", func(b *testing.B) {
		var buf bytes.Buffer
		for b.Loop() {
			buf.Reset()
			if err := s.Snapshot().Write(&buf); err != nil {
				b.Fatal(err)
			}
		}
		b.SetBytes(int64(buf.Len()))
	})
}
