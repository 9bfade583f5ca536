package tally

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pollcast/pollcast/internal/testsvc"
	"github.com/pollcast/pollcast/votelog"
)

// pollIn returns a poll ID whose votes go to shard, as ingest routes them.
func pollIn(shard int, name string) string {
	for i := 0; ; i++ {
		id := fmt.Sprintf("%s-%d", name, i)
		if votelog.Shard(id, votelog.DefaultShards) == shard {
			return id
		}
	}
}

// testStore is the conformance suite every Store implementation passes.
// Stores are made for votelog.DefaultShards shards.
func testStore(t *testing.T, newStore func(t *testing.T) Store) {
	ctx := context.Background()
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	// delta is a poll's increment: total votes, of which one per listed
	// voter key, the rest anonymous.
	delta := func(total int64, opts map[string]int64, voters ...byte) *PollDelta {
		d := &PollDelta{Total: total, Options: opts, At: at}
		for _, v := range voters {
			d.Voters = append(d.Voters, [16]byte{v})
		}
		d.Anonymous = total - int64(len(voters))
		return d
	}

	t.Run("empty", func(t *testing.T) {
		s := newStore(t)
		if m, err := s.Watermark(ctx, 3); err != nil || m != 0 {
			t.Fatalf("Watermark = %d, %v; want 0", m, err)
		}
		c, err := s.Counts(ctx, "p")
		if err != nil || c.PollID != "p" || c.Total != 0 || c.Voters != 0 || c.Version != 0 || c.Options == nil || len(c.Options) != 0 {
			t.Fatalf("Counts of unknown poll = %+v, %v", c, err)
		}
		if err := s.Ping(ctx); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("apply and read", func(t *testing.T) {
		s := newStore(t)
		p, q := pollIn(1, "p"), pollIn(1, "q")
		b := Batch{Shard: 1, Prev: 0, Last: 5, Polls: map[string]*PollDelta{
			p: delta(3, map[string]int64{"a": 2, "b": 1}, 1, 2),
			q: delta(2, map[string]int64{"a": 2}, 1, 1),
		}}
		if err := s.Apply(ctx, b); err != nil {
			t.Fatal(err)
		}
		later := delta(2, map[string]int64{"b": 2}, 2, 3)
		later.At = at.Add(time.Minute)
		if err := s.Apply(ctx, Batch{Shard: 1, Prev: 5, Last: 9, Polls: map[string]*PollDelta{p: later}}); err != nil {
			t.Fatal(err)
		}
		if m, _ := s.Watermark(ctx, 1); m != 9 {
			t.Fatalf("watermark %d, want 9", m)
		}
		c, _ := s.Counts(ctx, p)
		// Voters: keys 1, 2, 3 plus one anonymous vote. Version counts
		// applied votes; UpdatedAt is the newest vote's time.
		if c.PollID != p || c.Total != 5 || c.Options["a"] != 2 || c.Options["b"] != 3 || c.Voters != 4 ||
			c.Version != 5 || !c.UpdatedAt.Equal(at.Add(time.Minute)) {
			t.Fatalf("counts of p = %+v", c)
		}
		// Who voted, per poll.
		for _, c := range []struct {
			poll  string
			voter byte
			want  bool
		}{{p, 1, true}, {p, 3, true}, {p, 4, false}, {q, 1, true}, {q, 2, false}, {pollIn(1, "nobody"), 1, false}} {
			if got, err := s.HasVoter(ctx, c.poll, [16]byte{c.voter}); err != nil || got != c.want {
				t.Fatalf("HasVoter(%s, %d) = %v, %v; want %v", c.poll, c.voter, got, err, c.want)
			}
		}
		// Distinct voters are per poll: key 1 voted twice on q.
		if c, _ := s.Counts(ctx, q); c.Total != 2 || c.Voters != 1 || !c.UpdatedAt.Equal(at) {
			t.Fatalf("counts of q = %+v", c)
		}
		// An older batch time does not move UpdatedAt back.
		if err := s.Apply(ctx, Batch{Shard: 1, Prev: 9, Last: 10, Polls: map[string]*PollDelta{p: delta(1, map[string]int64{"a": 1})}}); err != nil {
			t.Fatal(err)
		}
		if c, _ := s.Counts(ctx, p); !c.UpdatedAt.Equal(at.Add(time.Minute)) || c.Version != 6 {
			t.Fatalf("counts of p after an older vote = %+v", c)
		}
		// Counts are a copy.
		c.Options["a"] = 1000
		if again, _ := s.Counts(ctx, p); again.Options["a"] != 3 {
			t.Fatalf("Counts returned the store's own map: %+v", again)
		}
	})

	t.Run("fencing", func(t *testing.T) {
		p := pollIn(0, "p")
		one := map[string]*PollDelta{p: delta(1, map[string]int64{"a": 1})}
		tests := []struct {
			name    string
			batch   Batch
			wantErr error // nil: applied
		}{
			{"next batch", Batch{Shard: 0, Prev: 10, Last: 12, Polls: one}, nil},
			{"stale worker behind", Batch{Shard: 0, Prev: 4, Last: 12, Polls: one}, ErrFenced},
			{"replay of the first batch", Batch{Shard: 0, Prev: 0, Last: 10, Polls: one}, ErrFenced},
			{"worker ahead", Batch{Shard: 0, Prev: 11, Last: 12, Polls: one}, ErrFenced},
			{"empty batch moves the watermark", Batch{Shard: 0, Prev: 10, Last: 11}, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				s := newStore(t)
				if err := s.Apply(ctx, Batch{Shard: 0, Prev: 0, Last: 10, Polls: map[string]*PollDelta{p: delta(1, map[string]int64{"a": 1}, 7)}}); err != nil {
					t.Fatal(err)
				}
				before, _ := s.Counts(ctx, p)
				err := s.Apply(ctx, tt.batch)
				if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
					t.Fatalf("Apply = %v, want %v", err, tt.wantErr)
				}
				c, _ := s.Counts(ctx, p)
				m, _ := s.Watermark(ctx, 0)
				if tt.wantErr != nil {
					if m != 10 || c.Total != before.Total || c.Version != before.Version || c.Options["a"] != before.Options["a"] {
						t.Fatalf("fenced batch changed the store: watermark %d, counts %+v", m, c)
					}
					return
				}
				wantTotal := before.Total
				if tt.batch.Polls != nil {
					wantTotal++
				}
				if m != tt.batch.Last || c.Total != wantTotal {
					t.Fatalf("watermark %d, counts %+v; want watermark %d, total %d", m, c, tt.batch.Last, wantTotal)
				}
			})
		}
	})

	t.Run("many distinct voters", func(t *testing.T) {
		s := newStore(t)
		p := pollIn(4, "many")
		const voters, perBatch = 50_000, 5_000
		var mark uint64
		// Every voter votes twice, in different batches.
		for round := range 2 {
			for first := 0; first < voters; first += perBatch {
				d := &PollDelta{Total: perBatch, Options: map[string]int64{"a": perBatch}, At: at}
				for v := first; v < first+perBatch; v++ {
					var k [16]byte
					binary.BigEndian.PutUint64(k[8:], uint64(v)) // keys alike in their first bytes
					d.Voters = append(d.Voters, k)
				}
				if err := s.Apply(ctx, Batch{Shard: 4, Prev: mark, Last: mark + perBatch, Polls: map[string]*PollDelta{p: d}}); err != nil {
					t.Fatalf("round %d: %v", round, err)
				}
				mark += perBatch
			}
		}
		if c, _ := s.Counts(ctx, p); c.Total != 2*voters || c.Voters != voters {
			t.Fatalf("counts %+v, want total %d, voters %d", c, 2*voters, voters)
		}
	})

	t.Run("delete poll", func(t *testing.T) {
		s := newStore(t)
		p, other := pollIn(2, "p"), pollIn(2, "o")
		_ = s.Apply(ctx, Batch{Shard: 2, Prev: 0, Last: 1, Polls: map[string]*PollDelta{
			p: delta(1, map[string]int64{"a": 1}, 9), other: delta(1, map[string]int64{"a": 1}, 9),
		}})
		if err := s.DeletePoll(ctx, p); err != nil {
			t.Fatal(err)
		}
		if c, _ := s.Counts(ctx, p); c.Total != 0 || c.Voters != 0 || len(c.Options) != 0 || c.Options == nil {
			t.Fatalf("deleted poll counts %+v", c)
		}
		if voted, err := s.HasVoter(ctx, p, [16]byte{9}); err != nil || voted {
			t.Fatalf("a deleted poll's voter: %v, %v", voted, err)
		}
		if c, _ := s.Counts(ctx, other); c.Total != 1 {
			t.Fatalf("DeletePoll touched another poll: %+v", c)
		}
		if m, _ := s.Watermark(ctx, 2); m != 1 {
			t.Fatal("DeletePoll moved a watermark")
		}
		if err := s.DeletePoll(ctx, "never-existed"); err != nil {
			t.Fatalf("DeletePoll of an unknown poll = %v", err)
		}
	})

	t.Run("a batch in flight does not bring a deleted poll back", func(t *testing.T) {
		// A batch read before the catalog marked the poll deleted, applied
		// after DeletePoll: a tally process that has not seen the mark yet.
		s := newStore(t)
		p, q := pollIn(1, "p"), pollIn(1, "q")
		d := func() *PollDelta { return delta(2, map[string]int64{"a": 1, "b": 1}, 7) }
		if err := s.Apply(ctx, Batch{Shard: 1, Prev: 0, Last: 1, Polls: map[string]*PollDelta{p: d()}}); err != nil {
			t.Fatal(err)
		}
		if err := s.DeletePoll(ctx, p); err != nil {
			t.Fatal(err)
		}
		if err := s.Apply(ctx, Batch{Shard: 1, Prev: 1, Last: 3, Polls: map[string]*PollDelta{p: d(), q: d()}}); err != nil {
			t.Fatal(err)
		}
		if c, _ := s.Counts(ctx, p); c.Total != 0 || c.Voters != 0 || len(c.Options) != 0 {
			t.Fatalf("deleted poll counts %+v", c)
		}
		if voted, err := s.HasVoter(ctx, p, [16]byte{7}); err != nil || voted {
			t.Fatalf("a deleted poll's voter came back: %v, %v", voted, err)
		}
		if c, _ := s.Counts(ctx, q); c.Total != 2 || c.Voters != 2 || c.Options["a"] != 1 || c.Options["b"] != 1 {
			t.Fatalf("the other poll of the batch: %+v", c)
		}
		if voted, _ := s.HasVoter(ctx, q, [16]byte{7}); !voted {
			t.Fatal("the other poll of the batch lost its voter")
		}
		if m, _ := s.Watermark(ctx, 1); m != 3 {
			t.Fatalf("watermark %d, want 3", m)
		}
	})

	t.Run("concurrent shards", func(t *testing.T) {
		s := newStore(t)
		const shards, batches = 8, 50
		var wg sync.WaitGroup
		for sh := range shards {
			wg.Go(func() {
				p := pollIn(sh, "c")
				for i := range batches {
					b := Batch{Shard: sh, Prev: uint64(i), Last: uint64(i + 1), Polls: map[string]*PollDelta{
						p: delta(1, map[string]int64{"a": 1}, byte(i%5)),
					}}
					if err := s.Apply(ctx, b); err != nil {
						t.Error(err)
						return
					}
				}
			})
			// A reader of every poll meanwhile, as request goroutines are.
			wg.Go(func() {
				for range batches {
					if _, err := s.Counts(ctx, pollIn(sh, "c")); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		for sh := range shards {
			c, _ := s.Counts(ctx, pollIn(sh, "c"))
			if c.Total != batches || c.Options["a"] != batches || c.Voters != 5 {
				t.Fatalf("shard %d counts %+v", sh, c)
			}
			if m, _ := s.Watermark(ctx, sh); m != batches {
				t.Fatalf("shard %d watermark %d", sh, m)
			}
		}
	})

	t.Run("two workers on one shard", func(t *testing.T) {
		// Both compute their next batch against the same watermark; exactly
		// one wins, the other is fenced and must not count.
		s := newStore(t)
		p := pollIn(5, "race")
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i := range errs {
			wg.Go(func() {
				errs[i] = s.Apply(ctx, Batch{Shard: 5, Prev: 0, Last: 3, Polls: map[string]*PollDelta{p: delta(3, map[string]int64{"a": 3})}})
			})
		}
		wg.Wait()
		if (errs[0] == nil) == (errs[1] == nil) || !errors.Is(errors.Join(errs...), ErrFenced) {
			t.Fatalf("Apply results %v, want one nil and one ErrFenced", errs)
		}
		if c, _ := s.Counts(ctx, p); c.Total != 3 {
			t.Fatalf("counts %+v, want total 3", c)
		}
	})

	t.Run("missing watermark rebuilds the shard", func(t *testing.T) {
		s := newStore(t)
		p := pollIn(3, "r")
		if err := s.Apply(ctx, Batch{Shard: 3, Prev: 0, Last: 4, Polls: map[string]*PollDelta{p: delta(4, map[string]int64{"a": 4}, 1, 2)}}); err != nil {
			t.Fatal(err)
		}
		before, _ := s.Counts(ctx, p)
		r, ok := s.(interface{ forgetWatermark(int) })
		if !ok {
			t.Skip("the store cannot lose a watermark alone")
		}
		// The watermark is lost but counters survived: a rebuild from the
		// start must not add to them.
		r.forgetWatermark(3)
		if err := s.Apply(ctx, Batch{Shard: 3, Prev: 0, Last: 4, Polls: map[string]*PollDelta{p: delta(4, map[string]int64{"a": 4}, 1, 2)}}); err != nil {
			t.Fatal(err)
		}
		if c, _ := s.Counts(ctx, p); c.Total != before.Total || c.Voters != before.Voters || c.Options["a"] != 4 {
			t.Fatalf("rebuilt counts %+v, want %+v", c, before)
		}
	})

	t.Run("reset a shard ahead of the log", func(t *testing.T) {
		s := newStore(t)
		p, q, other := pollIn(5, "p"), pollIn(5, "q"), pollIn(6, "o")
		apply := func(b Batch) {
			t.Helper()
			if err := s.Apply(ctx, b); err != nil {
				t.Fatal(err)
			}
		}
		apply(Batch{Shard: 5, Prev: 0, Last: 10, Polls: map[string]*PollDelta{
			p: delta(3, map[string]int64{"a": 3}, 1, 2), q: delta(1, map[string]int64{"b": 1}, 7),
		}})
		apply(Batch{Shard: 6, Prev: 0, Last: 12, Polls: map[string]*PollDelta{other: delta(2, map[string]int64{"a": 2}, 1)}})

		// Not ahead of the log: nothing changes.
		for _, end := range []uint64{10, 11} {
			if reset, err := s.ResetShard(ctx, 5, end); err != nil || reset {
				t.Fatalf("ResetShard(5, %d) of a shard at 10 = %v, %v; want false", end, reset, err)
			}
		}
		if c, _ := s.Counts(ctx, p); c.Total != 3 {
			t.Fatalf("counts of p %+v after a reset that was not due, want total 3", c)
		}

		// Ahead of the log (it ends at 4): the shard's polls and watermark go, the other shard's stay.
		if reset, err := s.ResetShard(ctx, 5, 4); err != nil || !reset {
			t.Fatalf("ResetShard(5, 4) of a shard at 10 = %v, %v; want true", reset, err)
		}
		if m, _ := s.Watermark(ctx, 5); m != 0 {
			t.Fatalf("watermark after reset %d, want 0", m)
		}
		for _, id := range []string{p, q} {
			c, err := s.Counts(ctx, id)
			if err != nil || c.Total != 0 || c.Voters != 0 || len(c.Options) != 0 {
				t.Fatalf("counts of %s after reset %+v, %v; want zero", id, c, err)
			}
		}
		if voted, _ := s.HasVoter(ctx, q, [16]byte{7}); voted {
			t.Fatal("a voter of a reset shard is still known")
		}
		if c, _ := s.Counts(ctx, other); c.Total != 2 {
			t.Fatalf("counts of the other shard's poll %+v, want total 2", c)
		}
		if m, _ := s.Watermark(ctx, 6); m != 12 {
			t.Fatalf("the other shard's watermark %d, want 12", m)
		}

		// A batch computed before the reset is fenced off; folding again from the start counts once.
		if err := s.Apply(ctx, Batch{Shard: 5, Prev: 10, Last: 11, Polls: map[string]*PollDelta{p: delta(1, map[string]int64{"a": 1})}}); !errors.Is(err, ErrFenced) {
			t.Fatalf("Apply after Prev 10 on a reset shard = %v, want ErrFenced", err)
		}
		apply(Batch{Shard: 5, Prev: 0, Last: 3, Polls: map[string]*PollDelta{p: delta(2, map[string]int64{"a": 2}, 1)}})
		if c, _ := s.Counts(ctx, p); c.Total != 2 || c.Voters != 2 || c.Options["a"] != 2 {
			t.Fatalf("counts of p folded again %+v, want total 2, voters 2", c)
		}
		if reset, err := s.ResetShard(ctx, 5, 4); err != nil || reset {
			t.Fatalf("a second ResetShard(5, 4) after the rebuild = %v, %v; want false", reset, err)
		}
	})
}

func TestMemoryStore(t *testing.T) {
	testStore(t, func(*testing.T) Store { return NewMemoryStore() })
}

// forgetWatermark drops a shard's watermark the way a partial loss of Redis
// data would.
func (s *RedisStore) forgetWatermark(shard int) {
	s.rdb.Del(context.Background(), s.shardKey(shard)+"wm")
}

func TestRedisStore(t *testing.T) {
	testStore(t, func(t *testing.T) Store {
		rdb, prefix := testsvc.Redis(t)
		s, err := NewRedisStore(rdb, RedisConfig{Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
