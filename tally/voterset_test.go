package tally

import (
	"math/rand/v2"
	"testing"
)

// TestVoterSetIsASet: a voterSet holds what a map would, through growth,
// repeats and zero.
func TestVoterSetIsASet(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var s voterSet
	want := map[uint64]struct{}{}
	check := func(when string) {
		t.Helper()
		if s.len() != len(want) {
			t.Fatalf("%s: len %d, want %d", when, s.len(), len(want))
		}
		if 4*s.n > 3*len(s.slots) {
			t.Fatalf("%s: %d hashes in %d slots", when, s.n, len(s.slots))
		}
	}
	check("empty")
	var added []uint64
	for i := range 100_000 {
		var h uint64
		switch {
		case i%7 == 0 && len(added) > 0: // a repeat
			h = added[rng.IntN(len(added))]
		case i%1000 == 1:
			h = 0
		case i%5 == 0: // crowd one region of the table
			h = rng.Uint64() &^ 0xffff
		default:
			h = rng.Uint64()
		}
		s.add(h)
		want[h] = struct{}{}
		added = append(added, h)
	}
	check("after adds")
	held := 0
	for _, h := range s.slots {
		if h != 0 {
			if _, ok := want[h]; !ok {
				t.Fatalf("holds %x, never added", h)
			}
			held++
		}
	}
	if s.zero {
		held++
	}
	if held != len(want) {
		t.Fatalf("holds %d, want %d", held, len(want))
	}
}

func BenchmarkVoterSet(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	hs := make([]uint64, 1<<20)
	for i := range hs {
		hs[i] = rng.Uint64()
	}
	b.Run("voterSet", func(b *testing.B) {
		for b.Loop() {
			var s voterSet
			for _, h := range hs {
				s.add(h)
			}
		}
	})
	b.Run("map", func(b *testing.B) {
		for b.Loop() {
			s := map[uint64]struct{}{}
			for _, h := range hs {
				s[h] = struct{}{}
			}
		}
	})
}
