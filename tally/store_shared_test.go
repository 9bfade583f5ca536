package tally

import (
	"context"
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
		if err != nil || c.PollID != "p" || c.Total != 0 || c.Options == nil {
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
		b2 := Batch{Shard: 1, Prev: 5, Last: 9, Polls: map[string]*PollDelta{
			p: delta(2, map[string]int64{"b": 2}, 2, 3),
		}}
		if err := s.Apply(ctx, b2); err != nil {
			t.Fatal(err)
		}
		if m, _ := s.Watermark(ctx, 1); m != 9 {
			t.Fatalf("watermark %d, want 9", m)
		}
		c, _ := s.Counts(ctx, p)
		// Voters: keys 1, 2, 3 plus one anonymous vote.
		if c.Total != 5 || c.Options["a"] != 2 || c.Options["b"] != 3 || c.Voters != 4 || c.Version != 5 || !c.UpdatedAt.Equal(at) {
			t.Fatalf("counts of p = %+v", c)
		}
		if c, _ := s.Counts(ctx, q); c.Total != 2 || c.Voters != 1 {
			t.Fatalf("counts of q = %+v", c)
		}
		// Counts are a copy.
		c.Options["a"] = 1000
		if again, _ := s.Counts(ctx, p); again.Options["a"] != 2 {
			t.Fatal("Counts returned the store's own map")
		}
	})

	t.Run("fencing", func(t *testing.T) {
		s := newStore(t)
		p := pollIn(0, "p")
		if err := s.Apply(ctx, Batch{Shard: 0, Prev: 0, Last: 10, Polls: map[string]*PollDelta{p: delta(1, map[string]int64{"a": 1})}}); err != nil {
			t.Fatal(err)
		}
		// A stale worker computed its batch against watermark 4.
		stale := Batch{Shard: 0, Prev: 4, Last: 12, Polls: map[string]*PollDelta{p: delta(5, map[string]int64{"a": 5})}}
		if err := s.Apply(ctx, stale); !errors.Is(err, ErrFenced) {
			t.Fatalf("stale batch = %v, want ErrFenced", err)
		}
		if c, _ := s.Counts(ctx, p); c.Total != 1 {
			t.Fatalf("fenced batch changed counts: %+v", c)
		}
		if m, _ := s.Watermark(ctx, 0); m != 10 {
			t.Fatalf("fenced batch moved the watermark to %d", m)
		}
		// Replaying the first batch is fenced too: never counted twice.
		if err := s.Apply(ctx, Batch{Shard: 0, Prev: 0, Last: 10}); !errors.Is(err, ErrFenced) {
			t.Fatalf("replayed batch = %v", err)
		}
		// An empty batch still moves the watermark.
		if err := s.Apply(ctx, Batch{Shard: 0, Prev: 10, Last: 11}); err != nil {
			t.Fatal(err)
		}
		if m, _ := s.Watermark(ctx, 0); m != 11 {
			t.Fatalf("watermark %d, want 11", m)
		}
	})

	t.Run("delete poll", func(t *testing.T) {
		s := newStore(t)
		p := pollIn(2, "p")
		_ = s.Apply(ctx, Batch{Shard: 2, Prev: 0, Last: 1, Polls: map[string]*PollDelta{p: delta(1, map[string]int64{"a": 1}, 9)}})
		if err := s.DeletePoll(ctx, p); err != nil {
			t.Fatal(err)
		}
		if c, _ := s.Counts(ctx, p); c.Total != 0 || c.Voters != 0 {
			t.Fatalf("deleted poll counts %+v", c)
		}
		if m, _ := s.Watermark(ctx, 2); m != 1 {
			t.Fatal("DeletePoll moved a watermark")
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
					_, _ = s.Counts(ctx, p)
				}
			})
		}
		wg.Wait()
		for sh := range shards {
			c, _ := s.Counts(ctx, pollIn(sh, "c"))
			if c.Total != batches || c.Options["a"] != batches || c.Voters != 5 {
				t.Fatalf("shard %d counts %+v", sh, c)
			}
		}
	})

	t.Run("missing watermark rebuilds the shard", func(t *testing.T) {
		s := newStore(t)
		p := pollIn(3, "r")
		if err := s.Apply(ctx, Batch{Shard: 3, Prev: 0, Last: 4, Polls: map[string]*PollDelta{p: delta(4, map[string]int64{"a": 4}, 1, 2)}}); err != nil {
			t.Fatal(err)
		}
		before, _ := s.Counts(ctx, p)
		if r, ok := s.(interface{ forgetWatermark(int) }); ok {
			// The watermark is lost but counters survived: a rebuild from
			// the start must not add to them.
			r.forgetWatermark(3)
			if err := s.Apply(ctx, Batch{Shard: 3, Prev: 0, Last: 4, Polls: map[string]*PollDelta{p: delta(4, map[string]int64{"a": 4}, 1, 2)}}); err != nil {
				t.Fatal(err)
			}
			if c, _ := s.Counts(ctx, p); c.Total != before.Total || c.Voters != before.Voters || c.Options["a"] != 4 {
				t.Fatalf("rebuilt counts %+v, want %+v", c, before)
			}
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
