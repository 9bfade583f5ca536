package ingest

import (
	"bytes"
	"context"
	"testing"
	"time"
)

// votersRoundTrip writes vs and loads it into a new registry.
func votersRoundTrip(tb testing.TB, vs *VotersSnapshot) (*MemoryVoters, uint64) {
	tb.Helper()
	var buf bytes.Buffer
	if err := vs.Write(context.Background(), &buf); err != nil {
		tb.Fatal(err)
	}
	loaded := NewMemoryVoters()
	covered, err := loaded.LoadSnapshot(&buf, uint64(buf.Len()))
	if err != nil {
		tb.Fatal(err)
	}
	return loaded, covered
}

// TestVotersSnapshotSettlesClaims: a vote whose claim is pending while the
// registry is copied is in the snapshot once stored; a released claim
// leaves its voter free. Write waits for the claims it copied to settle.
func TestVotersSnapshotSettlesClaims(t *testing.T) {
	ctx := context.Background()
	mv := NewMemoryVoters()
	var votes []voterVote
	for i := range 5000 {
		v := voterVote{key: voterKey{byte(i), byte(i >> 8), 1}, id: voteID{byte(i), byte(i >> 8), 2}}
		votes = append(votes, v)
		if _, err := mv.Claim(ctx, v.key, v.id); err != nil {
			t.Fatal(err)
		}
	}
	zero := voterVote{id: voteID{9}} // the zero key is a voter like any other
	_ = mv.Record(ctx, zero.key, zero.id)
	// Votes 0..999 are stored before the snapshot; 1000..2999 will be
	// stored while it is written, 3000..4999 fail.
	for _, v := range votes[:1000] {
		_ = mv.Finish(ctx, v.key, v.id, true)
	}
	vs := &VotersSnapshot{s: &Service{cfg: Config{PublishTimeout: time.Second}}, mv: mv, covered: 42}
	type result struct {
		mv      *MemoryVoters
		covered uint64
	}
	done := make(chan result, 1)
	go func() {
		loaded, covered := votersRoundTrip(t, vs)
		done <- result{loaded, covered}
	}()
	for i, v := range votes[1000:] {
		_ = mv.Finish(ctx, v.key, v.id, i < 2000)
	}
	r := <-done
	if r.covered != 42 {
		t.Fatalf("covers %d, want 42", r.covered)
	}
	for i, v := range votes {
		got, err := r.mv.Claim(ctx, v.key, voteID{0xff})
		if want := map[bool]claimResult{true: claimTaken, false: claimed}[i < 3000]; err != nil || got != want {
			t.Fatalf("vote %d after the snapshot: claim = %v %v, want %v", i, got, err, want)
		}
		if i < 3000 {
			if got, _ := r.mv.Claim(ctx, v.key, v.id); got != claimStored {
				t.Fatalf("vote %d: a retry of the stored vote = %v", i, got)
			}
		}
	}
	if ok, _ := r.mv.Voted(ctx, zero.key); !ok {
		t.Fatal("the zero key's vote forgotten")
	}
}

// TestVotersSnapshotUnsettledClaim: a claim that never settles fails the
// snapshot rather than leave its vote out.
func TestVotersSnapshotUnsettledClaim(t *testing.T) {
	ctx := context.Background()
	mv := NewMemoryVoters()
	if _, err := mv.Claim(ctx, voterKey{1}, voteID{1}); err != nil {
		t.Fatal(err)
	}
	vs := &VotersSnapshot{s: &Service{cfg: Config{PublishTimeout: time.Millisecond}}, mv: mv, covered: 1}
	if err := vs.Write(ctx, &bytes.Buffer{}); err == nil {
		t.Fatal("a snapshot with a claim still unsettled")
	}
}

// BenchmarkVotersSnapshotShardPause measures how long a snapshot holds one
// shard of a registry of 1 M voters locked (the copy of the shard): the
// longest a vote waits for a snapshot.
func BenchmarkVotersSnapshotShardPause(b *testing.B) {
	ctx := context.Background()
	mv := NewMemoryVoters()
	vs := make([]voterVote, 0, 1<<20)
	for i := range 1 << 20 {
		vs = append(vs, voterVote{key: voterKey{byte(i), byte(i >> 8), byte(i >> 16), 1, 2, 3, 4, 5}, id: voteID{byte(i), 9}})
	}
	_ = mv.RecordMany(ctx, vs)
	var stored, pending []voterVote
	for b.Loop() {
		stored, pending = mv.shards[0].copyTo(stored[:0], pending[:0])
	}
}
