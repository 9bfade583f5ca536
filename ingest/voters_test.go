package ingest

import (
	"context"
	"encoding/binary"
	"hash/maphash"
	"math/rand/v2"
	"os"
	"sync"
	"testing"

	"github.com/pollcast/pollcast/internal/testsvc"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testsvc.StopAll()
	os.Exit(code)
}

func TestMemoryVoters(t *testing.T) {
	testVoters(t, func(*testing.T) Voters { return NewMemoryVoters() })
}

func TestRedisVoters(t *testing.T) {
	testVoters(t, func(t *testing.T) Voters {
		rdb, prefix := testsvc.Redis(t)
		v, err := NewRedisVoters(rdb, RedisVotersConfig{Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		if err := v.MarkComplete(context.Background()); err != nil {
			t.Fatal(err)
		}
		return v
	})
}

// TestRedisVotersLost: once Redis lost its data (here: every key of the
// registry), claims answer claimLost until the registry is marked complete
// again, instead of letting a voter who voted before the loss vote again.
func TestRedisVotersLost(t *testing.T) {
	ctx := context.Background()
	rdb, prefix := testsvc.Redis(t)
	v, err := NewRedisVoters(rdb, RedisVotersConfig{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := v.Complete(ctx); err != nil || ok {
		t.Fatalf("a new registry is complete: %v %v", ok, err)
	}
	if got, err := v.Claim(ctx, voterKey{1}, voteID{1}); err != nil || got != claimLost {
		t.Fatalf("claim before the registry is known complete = %v %v", got, err)
	}
	if err := v.MarkComplete(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := v.Claim(ctx, voterKey{1}, voteID{1}); err != nil || got != claimed {
		t.Fatalf("claim = %v %v", got, err)
	}
	if err := v.Finish(ctx, voterKey{1}, voteID{1}, true); err != nil {
		t.Fatal(err)
	}
	keys, err := rdb.Keys(ctx, prefix+":*").Result()
	if err != nil || len(keys) < 2 {
		t.Fatalf("registry keys %v %v", keys, err)
	}
	if err := rdb.Del(ctx, keys...).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := v.Claim(ctx, voterKey{1}, voteID{2}); err != nil || got != claimLost {
		t.Fatalf("claim of a voter who voted before the loss = %v %v", got, err)
	}
	if ok, err := v.Complete(ctx); err != nil || ok {
		t.Fatalf("complete after the loss: %v %v", ok, err)
	}
}

// testVoters is the conformance suite of every Voters implementation.
func testVoters(t *testing.T, newVoters func(*testing.T) Voters) {
	ctx := context.Background()
	must := func(r claimResult, err error) claimResult {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	voted := func(v Voters, k voterKey) bool {
		t.Helper()
		ok, err := v.Voted(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}

	t.Run("claim lifecycle", func(t *testing.T) {
		v := newVoters(t)
		k := voterKey{1}
		a, b := voteID{1}, voteID{2}
		if got := must(v.Claim(ctx, k, a)); got != claimed {
			t.Fatalf("first claim = %v", got)
		}
		if got := must(v.Claim(ctx, k, b)); got != claimTaken {
			t.Fatalf("other vote while in flight = %v", got)
		}
		if got := must(v.Claim(ctx, k, a)); got != claimed {
			t.Fatalf("retry of the same vote in flight = %v", got)
		}
		if voted(v, k) {
			t.Fatal("voted before anything was stored")
		}
		if err := v.Finish(ctx, k, a, true); err != nil {
			t.Fatal(err)
		}
		if !voted(v, k) {
			t.Fatal("not voted after the vote was stored")
		}
		if got := must(v.Claim(ctx, k, a)); got != claimStored {
			t.Fatalf("retry after storing = %v", got)
		}
		if got := must(v.Claim(ctx, k, b)); got != claimTaken {
			t.Fatalf("second vote after storing = %v", got)
		}
	})

	t.Run("failed publish releases", func(t *testing.T) {
		v := newVoters(t)
		k := voterKey{7}
		must(v.Claim(ctx, k, voteID{1}))
		if err := v.Finish(ctx, k, voteID{1}, false); err != nil {
			t.Fatal(err)
		}
		if got := must(v.Claim(ctx, k, voteID{2})); got != claimed {
			t.Fatalf("claim after a failed publish = %v, want the voter free again", got)
		}
	})

	t.Run("record keeps the first stored vote", func(t *testing.T) {
		v := newVoters(t)
		k := voterKey{9}
		_ = v.Record(ctx, k, voteID{1})
		_ = v.Record(ctx, k, voteID{2})
		if got := must(v.Claim(ctx, k, voteID{1})); got != claimStored {
			t.Fatalf("claim of the first recorded vote = %v", got)
		}
	})

	t.Run("record many, in order", func(t *testing.T) {
		v := newVoters(t)
		var vs []voterVote
		for i := range 300 {
			vs = append(vs, voterVote{voterKey{byte(i), byte(i >> 8), 7}, voteID{byte(i), 1}})
		}
		vs = append(vs, voterVote{voterKey{0, 0, 7}, voteID{9, 9}}) // a second vote of the first voter
		if err := v.RecordMany(ctx, vs); err != nil {
			t.Fatal(err)
		}
		for _, x := range vs[:300] {
			if got := must(v.Claim(ctx, x.key, x.id)); got != claimStored {
				t.Fatalf("claim of a recorded vote = %v", got)
			}
		}
		if got := must(v.Claim(ctx, voterKey{0, 0, 7}, voteID{9, 9})); got != claimTaken {
			t.Fatalf("the later vote of a voter replaced the first: %v", got)
		}
	})

	t.Run("forget", func(t *testing.T) {
		v := newVoters(t)
		stored, pending, kept := voterKey{11}, voterKey{12}, voterKey{13}
		_ = v.Record(ctx, stored, voteID{1})
		_ = v.Record(ctx, kept, voteID{3})
		must(v.Claim(ctx, pending, voteID{2}))
		if err := v.Forget(ctx, []voterKey{stored, pending, {99}}); err != nil {
			t.Fatal(err)
		}
		if voted(v, stored) {
			t.Fatal("a forgotten voter still voted")
		}
		if got := must(v.Claim(ctx, stored, voteID{4})); got != claimed {
			t.Fatalf("claim of a forgotten voter = %v, want claimed", got)
		}
		if got := must(v.Claim(ctx, pending, voteID{5})); got != claimed {
			t.Fatalf("claim of a voter whose claim was forgotten = %v, want claimed", got)
		}
		if !voted(v, kept) {
			t.Fatal("Forget took a voter it was not given")
		}
		if got := must(v.Claim(ctx, kept, voteID{6})); got != claimTaken {
			t.Fatalf("claim of a kept voter = %v", got)
		}
		if err := v.Forget(ctx, nil); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("concurrent claims: one wins", func(t *testing.T) {
		v := newVoters(t)
		k := voterKey{3}
		var wg sync.WaitGroup
		wins := make(chan voteID, 100)
		for i := range 100 {
			wg.Go(func() {
				id := voteID{byte(i), 1}
				if r, err := v.Claim(ctx, k, id); err == nil && r == claimed {
					wins <- id
				}
			})
		}
		wg.Wait()
		close(wins)
		if n := len(wins); n != 1 {
			t.Fatalf("%d claims won, want 1", n)
		}
	})
}

// TestRedisVotersGroupLost: one group's keys gone (a Cluster node that lost
// its slots) is seen by the claims of that group at once, and by Complete.
func TestRedisVotersGroupLost(t *testing.T) {
	ctx := context.Background()
	rdb, prefix := testsvc.Redis(t)
	v, err := NewRedisVoters(rdb, RedisVotersConfig{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.MarkComplete(ctx); err != nil {
		t.Fatal(err)
	}
	lost, kept := voterKey{1}, voterKey{2}
	for _, k := range []voterKey{lost, kept} {
		if got, err := v.Claim(ctx, k, voteID{1}); err != nil || got != claimed {
			t.Fatalf("claim = %v %v", got, err)
		}
	}
	keys, err := rdb.Keys(ctx, prefix+":{v1}:*").Result()
	if err != nil || len(keys) != 2 {
		t.Fatalf("group 1 keys %v %v", keys, err)
	}
	if err := rdb.Del(ctx, keys...).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := v.Claim(ctx, lost, voteID{2}); err != nil || got != claimLost {
		t.Fatalf("claim in the lost group = %v %v", got, err)
	}
	if got, err := v.Claim(ctx, kept, voteID{2}); err != nil || got != claimTaken {
		t.Fatalf("claim in a kept group = %v %v", got, err)
	}
	if ok, err := v.Complete(ctx); err != nil || ok {
		t.Fatalf("complete with a group lost: %v %v", ok, err)
	}
}

// TestMemoryVotersReserve: reserve sizes an empty registry once and never
// drops a voter it holds; RecordMany fills it as Record would.
func TestMemoryVotersReserve(t *testing.T) {
	ctx := context.Background()
	v := NewMemoryVoters()
	_ = v.Record(ctx, voterKey{1}, voteID{1})
	v.reserve(1 << 20)
	v.reserve(1 << 30) // a second call does nothing
	if ok, _ := v.Voted(ctx, voterKey{1}); !ok {
		t.Fatal("reserve dropped a voter")
	}
	var vs []voterVote
	for i := range 100_000 {
		k := voterKey{byte(i), byte(i >> 8), byte(i >> 16), 1}
		vs = append(vs, voterVote{k, voteID{byte(i)}})
	}
	if err := v.RecordMany(ctx, vs); err != nil {
		t.Fatal(err)
	}
	if n := v.Len(); n != 100_001 {
		t.Fatalf("Len = %d, want 100001", n)
	}
	for _, x := range vs[:1000] {
		if got, err := v.Claim(ctx, x.key, x.id); err != nil || got != claimStored {
			t.Fatalf("claim of a recorded vote = %v, %v", got, err)
		}
	}
}

// TestMemoryVotersMatchesModel: random sequences of claims, finishes,
// records and checks on a few voters answer as the registry's plain-map
// model does (the implementation before the stored votes moved to their
// own table).
func TestMemoryVotersMatchesModel(t *testing.T) {
	type modelClaim struct {
		vote      voteID
		inflight  int32
		committed bool
	}
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 4))
	for round := range 200 {
		v := NewMemoryVoters()
		model := map[voterKey]modelClaim{}
		keys := []voterKey{{}, {1}, {2}, {3, 1}, {0, 0, 0, 0, 0, 0, 0, 0, 9}}
		for step := range 200 {
			k, id := keys[rng.IntN(len(keys))], voteID{byte(rng.IntN(3))}
			switch op := rng.IntN(6); op {
			case 0, 1:
				got, _ := v.Claim(ctx, k, id)
				c, ok := model[k]
				want := claimed
				switch {
				case ok && c.vote != id:
					want = claimTaken
				case ok && c.committed:
					want = claimStored
				default:
					c.vote = id
					c.inflight++
					model[k] = c
				}
				if got != want {
					t.Fatalf("round %d step %d: Claim(%x, %x) = %v, want %v", round, step, k, id, got, want)
				}
			case 2:
				stored := rng.IntN(2) == 0
				_ = v.Finish(ctx, k, id, stored)
				if c, ok := model[k]; ok {
					c.inflight--
					if stored {
						c.committed = true
					}
					if !c.committed && c.inflight <= 0 {
						delete(model, k)
					} else {
						model[k] = c
					}
				}
			case 3:
				_ = v.Record(ctx, k, id)
				if c, ok := model[k]; !ok || !c.committed {
					c.vote, c.committed = id, true
					model[k] = c
				}
			case 5:
				_ = v.Forget(ctx, []voterKey{k})
				delete(model, k)
			case 4:
				got, _ := v.Voted(ctx, k)
				c, ok := model[k]
				if want := ok && c.committed; got != want {
					t.Fatalf("round %d step %d: Voted(%x) = %v, want %v", round, step, k, got, want)
				}
			}
			if got := v.Len(); got != len(model) {
				t.Fatalf("round %d step %d: Len = %d, want %d", round, step, got, len(model))
			}
		}
	}
}

// TestStoredVotes: the table keeps the first vote of each voter through
// growth, the zero key included.
func TestStoredVotes(t *testing.T) {
	tb := newStoredVotes(maphash.MakeSeed())
	if _, ok := tb.get(voterKey{1}); ok || tb.len() != 0 {
		t.Fatal("an empty table holds a vote")
	}
	rng := rand.New(rand.NewPCG(5, 6))
	want := map[voterKey]voteID{}
	for i := range 50_000 {
		var k voterKey
		switch {
		case i%100 == 3:
			// the zero key
		case i%7 == 0:
			k = voterKey{byte(i % 5)} // repeats
		default:
			binary.LittleEndian.PutUint64(k[:], rng.Uint64())
			binary.LittleEndian.PutUint64(k[8:], rng.Uint64())
		}
		id := voteID{byte(i), byte(i >> 8)}
		tb.add(k, id)
		if _, ok := want[k]; !ok {
			want[k] = id
		}
	}
	if tb.len() != len(want) || 4*tb.n > 3*len(tb.slots) {
		t.Fatalf("len %d (%d in %d slots), want %d", tb.len(), tb.n, len(tb.slots), len(want))
	}
	for k, id := range want {
		if got, ok := tb.get(k); !ok || got != id {
			t.Fatalf("get(%x) = %x, %v; want the first vote %x", k, got, ok, id)
		}
	}
	tb.reserve(1 << 17)
	if len(tb.slots) < 4*(1<<17)/3 {
		t.Fatalf("%d slots after reserving room for %d", len(tb.slots), 1<<17)
	}
	for k, id := range want {
		if got, ok := tb.get(k); !ok || got != id {
			t.Fatalf("after reserve: get(%x) = %x, %v; want %x", k, got, ok, id)
		}
	}
}

// TestStoredVotesRemove: random adds and removes, on keys that collide in
// small tables and on random ones, answer as a map does; the table never
// holds more than its votes.
func TestStoredVotesRemove(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for round := range 50 {
		tb := newStoredVotes(maphash.MakeSeed())
		want := map[voterKey]voteID{}
		n := 8 + rng.IntN(300) // keys to pick from: few collide often, many grow the table
		for step := range 5_000 {
			k := voterKey{byte(rng.IntN(n)), byte(rng.IntN(n) / 256)}
			if rng.IntN(10) == 0 {
				k = voterKey{} // the zero key
			}
			id := voteID{byte(step), byte(step >> 8)}
			if rng.IntN(3) == 0 {
				tb.remove(k)
				delete(want, k)
			} else {
				tb.add(k, id)
				if _, ok := want[k]; !ok {
					want[k] = id
				}
			}
			if tb.len() != len(want) {
				t.Fatalf("round %d step %d: len %d, want %d", round, step, tb.len(), len(want))
			}
		}
		for k, id := range want {
			if got, ok := tb.get(k); !ok || got != id {
				t.Fatalf("round %d: get(%x) = %x, %v; want %x", round, k, got, ok, id)
			}
		}
		for i := range n {
			k := voterKey{byte(i), byte(i / 256)}
			if _, in := want[k]; !in {
				if _, ok := tb.get(k); ok {
					t.Fatalf("round %d: get(%x) finds a removed vote", round, k)
				}
			}
		}
	}
}

// BenchmarkMemoryVotersRebuild: what a rebuild at start costs the
// registry, a million voters handed over 4,096 at a time.
func BenchmarkMemoryVotersRebuild(b *testing.B) {
	const n, batch = 1 << 20, 4096
	rng := rand.New(rand.NewPCG(7, 8))
	vs := make([]voterVote, n)
	for i := range vs {
		binary.LittleEndian.PutUint64(vs[i].key[:], rng.Uint64())
		binary.LittleEndian.PutUint64(vs[i].key[8:], rng.Uint64())
		vs[i].id = voteID(vs[i].key)
	}
	ctx := context.Background()
	for b.Loop() {
		v := NewMemoryVoters()
		v.reserve(n)
		for off := 0; off < n; off += batch {
			_ = v.RecordMany(ctx, vs[off:off+batch])
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/voter")
}
