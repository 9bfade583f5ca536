package ingest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/pollcast/pollcast/internal/testsvc"
)

func TestMemoryKeys(t *testing.T) {
	testKeys(t, func(_ *testing.T, window time.Duration) Keys { return NewMemoryKeys(KeysConfig{Window: window}) })
}

func TestRedisKeys(t *testing.T) {
	testKeys(t, func(t *testing.T, window time.Duration) Keys {
		rdb, prefix := testsvc.Redis(t)
		v, err := NewRedisVoters(rdb, RedisVotersConfig{Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		if err := v.MarkComplete(context.Background()); err != nil { // the markers are shared
			t.Fatal(err)
		}
		k, err := NewRedisKeys(rdb, RedisKeysConfig{KeysConfig: KeysConfig{Window: window}, Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		return k
	})
}

// TestRedisKeysLost: a group whose data (and marker) is gone answers
// keyLost, not "new key".
func TestRedisKeysLost(t *testing.T) {
	ctx := context.Background()
	rdb, prefix := testsvc.Redis(t)
	k, err := NewRedisKeys(rdb, RedisKeysConfig{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := k.Claim(ctx, voteID{1}, time.Now()); err != nil || got != keyLost {
		t.Fatalf("claim without the group's marker = %v, %v; want keyLost", got, err)
	}
}

// testKeys is the conformance suite of every Keys implementation.
func testKeys(t *testing.T, newKeys func(*testing.T, time.Duration) Keys) {
	ctx := context.Background()
	must := func(r keyState, err error) keyState {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	t.Run("claim lifecycle", func(t *testing.T) {
		k := newKeys(t, time.Hour)
		id := voteID{1}
		now := time.Now()
		if got := must(k.Claim(ctx, id, now)); got != keyClaimed {
			t.Fatalf("first claim = %v", got)
		}
		if got := must(k.Claim(ctx, id, now)); got != keyBusy {
			t.Fatalf("second attempt while the first is on its way = %v", got)
		}
		if got := must(k.Claim(ctx, voteID{2}, now)); got != keyClaimed {
			t.Fatalf("another key = %v", got)
		}
		if err := k.Finish(ctx, id, now, true); err != nil {
			t.Fatal(err)
		}
		if got := must(k.Claim(ctx, id, now)); got != keyStored {
			t.Fatalf("retry after storing = %v", got)
		}
	})

	t.Run("a failed attempt frees the key", func(t *testing.T) {
		k := newKeys(t, time.Hour)
		id := voteID{3}
		must(k.Claim(ctx, id, time.Now()))
		if err := k.Finish(ctx, id, time.Now(), false); err != nil {
			t.Fatal(err)
		}
		if got := must(k.Claim(ctx, id, time.Now())); got != keyClaimed {
			t.Fatalf("claim after a failed attempt = %v", got)
		}
	})

	t.Run("stored keys expire with the window", func(t *testing.T) {
		const window = time.Second
		k := newKeys(t, window)
		old, fresh, recorded, stale := voteID{4}, voteID{5}, voteID{6}, voteID{7}
		must(k.Claim(ctx, old, time.Now()))
		if err := k.Finish(ctx, old, time.Now().Add(-window+200*time.Millisecond), true); err != nil {
			t.Fatal(err)
		}
		must(k.Claim(ctx, fresh, time.Now()))
		if err := k.Finish(ctx, fresh, time.Now(), true); err != nil {
			t.Fatal(err)
		}
		if err := k.RecordMany(ctx, []keyedVote{{recorded, time.Now()}, {stale, time.Now().Add(-2 * window)}}); err != nil {
			t.Fatal(err)
		}
		for _, id := range []voteID{old, fresh, recorded} {
			if got := must(k.Claim(ctx, id, time.Now())); got != keyStored {
				t.Fatalf("key %x within the window = %v", id[0], got)
			}
		}
		if got := must(k.Claim(ctx, stale, time.Now())); got != keyClaimed {
			t.Fatalf("a key recorded past its window = %v, want a new vote", got)
		}
		testsvc.Eventually(t, 5*time.Second, "the old key to expire", func() bool {
			return must(k.Claim(ctx, old, time.Now())) == keyClaimed
		})
		if got := must(k.Claim(ctx, fresh, time.Now())); got != keyStored {
			t.Fatalf("a key still within its window = %v", got)
		}
	})

	t.Run("concurrent claims: one wins", func(t *testing.T) {
		k := newKeys(t, time.Hour)
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		for range 50 {
			wg.Go(func() {
				if r, err := k.Claim(ctx, voteID{8}, time.Now()); err == nil && r == keyClaimed {
					mu.Lock()
					wins++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if wins != 1 {
			t.Fatalf("%d claims won, want 1", wins)
		}
	})
}

// TestMemoryKeysDropsOldGenerations: keys past the window leave memory
// once newer ones come.
func TestMemoryKeysDropsOldGenerations(t *testing.T) {
	ctx := context.Background()
	k := NewMemoryKeys(KeysConfig{Window: 80 * time.Millisecond})
	for i := range 100 {
		if err := k.RecordMany(ctx, []keyedVote{{voteID{byte(i), 1}, time.Now()}}); err != nil {
			t.Fatal(err)
		}
	}
	testsvc.Eventually(t, 5*time.Second, "old generations to go", func() bool {
		_ = k.RecordMany(ctx, []keyedVote{{voteID{0, 2}, time.Now()}})
		return k.Len() < 10
	})
}
