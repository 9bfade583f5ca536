package ingest

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"
)

// TestKeysSnapshotSettlesClaims: the keys of every generation are in the
// snapshot with their votes' times; a key whose claim is pending while the
// registry is copied is in it once stored, a released claim leaves its key
// free; keys past the window are left out when loading.
func TestKeysSnapshotSettlesClaims(t *testing.T) {
	ctx := context.Background()
	const window = time.Hour
	now := time.Now()
	mk := NewMemoryKeys(KeysConfig{Window: window})
	id := func(i int) voteID { return voteID{byte(i), byte(i >> 8), 3} }
	// Older generations: one with a key past the window, one within it.
	mk.gens = []keyGen{
		{start: now.Add(-window - time.Minute).UnixNano(), ids: map[voteID]int64{
			id(9000): now.Add(-window - time.Minute).UnixNano(), id(9001): now.Add(-window + time.Minute).UnixNano(),
		}},
		{start: now.Add(-time.Minute).UnixNano(), ids: map[voteID]int64{id(9002): now.Add(-time.Minute).UnixNano()}},
	}
	for i := range 5000 {
		if st, err := mk.Claim(ctx, id(i), now); err != nil || st != keyClaimed {
			t.Fatalf("claim %d = %v, %v", i, st, err)
		}
	}
	// Keys 0..999 are stored before the snapshot; 1000..2999 will be
	// stored while it is written, 3000..4999 fail.
	for i := range 1000 {
		_ = mk.Finish(ctx, id(i), now, true)
	}
	ks := &KeysSnapshot{s: &Service{cfg: Config{PublishTimeout: time.Second}}, mk: mk, covered: 42}
	type result struct {
		mk      *MemoryKeys
		covered uint64
	}
	done := make(chan result, 1)
	w := &gateWriter{reached: make(chan struct{}), open: make(chan struct{})}
	go func() {
		if err := ks.Write(ctx, w); err != nil {
			t.Error(err)
		}
		loaded := NewMemoryKeys(KeysConfig{Window: window})
		covered, err := loaded.LoadSnapshot(&w.buf, uint64(w.buf.Len()))
		if err != nil {
			t.Error(err)
		}
		done <- result{loaded, covered}
	}()
	<-w.reached // the registry is frozen: the claims are settled after the copy
	for i := 1000; i < 5000; i++ {
		_ = mk.Finish(ctx, id(i), now.Add(time.Duration(i)), i < 3000)
	}
	close(w.open)
	r := <-done
	if r.covered != 42 {
		t.Fatalf("covers %d, want 42", r.covered)
	}
	for _, k := range []*MemoryKeys{mk, r.mk} { // the original thawed, and the copy
		for i := range 5000 {
			want := map[bool]keyState{true: keyStored, false: keyClaimed}[i < 3000]
			if st, err := k.Claim(ctx, id(i), time.Now()); err != nil || st != want {
				t.Fatalf("key %d after the snapshot = %v, %v; want %v", i, st, err, want)
			}
		}
		for i, want := range map[int]keyState{9000: keyClaimed, 9001: keyStored, 9002: keyStored} {
			if st, err := k.Claim(ctx, id(i), time.Now()); err != nil || st != want {
				t.Fatalf("key %d of an older generation = %v, %v; want %v", i, st, err, want)
			}
		}
	}
	// The vote's time comes back: the window runs from it.
	if at, ok := r.mk.lookup(id(2000)); !ok || at != now.Add(2000).UnixNano() {
		t.Fatalf("the time of key 2000 loaded as %d, %v; want %d", at, ok, now.Add(2000).UnixNano())
	}
	if at, ok := r.mk.lookup(id(9001)); !ok || at != now.Add(-window+time.Minute).UnixNano() {
		t.Fatalf("the time of key 9001 loaded as %d, %v", at, ok)
	}
}

// gateWriter holds the first write until open is closed, and says when it
// is reached.
type gateWriter struct {
	buf     bytes.Buffer
	reached chan struct{}
	open    chan struct{}
	once    sync.Once
}

func (g *gateWriter) Write(p []byte) (int, error) {
	g.once.Do(func() {
		close(g.reached)
		<-g.open
	})
	return g.buf.Write(p)
}

// TestKeysSnapshotStoredWhileFrozen: keys stored while a snapshot reads
// the generations are recognised then and after.
func TestKeysSnapshotStoredWhileFrozen(t *testing.T) {
	ctx := context.Background()
	mk := NewMemoryKeys(KeysConfig{})
	if err := mk.RecordMany(ctx, []keyedVote{{voteID{1}, time.Now()}}); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := mk.freeze(); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := mk.freeze(); err == nil {
		t.Fatal("a second freeze while frozen")
	}
	if _, err := mk.Claim(ctx, voteID{2}, time.Now()); err != nil {
		t.Fatal(err)
	}
	_ = mk.Finish(ctx, voteID{2}, time.Now(), true)
	_ = mk.RecordMany(ctx, []keyedVote{{voteID{3}, time.Now()}})
	for _, g := range mk.gens {
		if _, ok := g.ids[voteID{2}]; ok {
			t.Fatal("a key stored in a generation while frozen")
		}
	}
	check := func(when string) {
		t.Helper()
		for _, id := range []voteID{{1}, {2}, {3}} {
			if st, err := mk.Claim(ctx, id, time.Now()); err != nil || st != keyStored {
				t.Fatalf("%s: key %x = %v, %v; want stored", when, id[0], st, err)
			}
		}
	}
	check("frozen")
	mk.thaw()
	check("thawed")
	if mk.Len() != 3 {
		t.Fatalf("%d keys held after the thaw, want 3", mk.Len())
	}
}

// TestKeysSnapshotClaimTakenAgain: a claim seen pending that failed and
// whose key was claimed again is settled for the snapshot: the new attempt
// came after the sequence the snapshot covers.
func TestKeysSnapshotClaimTakenAgain(t *testing.T) {
	ctx := context.Background()
	mk := NewMemoryKeys(KeysConfig{})
	_, _ = mk.Claim(ctx, voteID{1}, time.Now())
	_, pending, _, err := mk.freeze()
	if err != nil {
		t.Fatal(err)
	}
	mk.thaw()
	_ = mk.Finish(ctx, voteID{1}, time.Time{}, false)
	if st, _ := mk.Claim(ctx, voteID{1}, time.Now()); st != keyClaimed {
		t.Fatalf("claim after a failed attempt = %v", st)
	}
	ks := &KeysSnapshot{s: &Service{cfg: Config{PublishTimeout: time.Millisecond}}, mk: mk}
	settled, err := ks.settle(ctx, pending)
	if err != nil || len(settled) != 0 {
		t.Fatalf("settle = %v, %v; want nothing stored", settled, err)
	}
}

// TestKeysSnapshotUnsettledClaim: a claim that never settles fails the
// snapshot rather than leave its key out, and leaves the registry thawed.
func TestKeysSnapshotUnsettledClaim(t *testing.T) {
	ctx := context.Background()
	mk := NewMemoryKeys(KeysConfig{})
	if _, err := mk.Claim(ctx, voteID{1}, time.Now()); err != nil {
		t.Fatal(err)
	}
	ks := &KeysSnapshot{s: &Service{cfg: Config{PublishTimeout: time.Millisecond}}, mk: mk, covered: 1}
	if err := ks.Write(ctx, &bytes.Buffer{}); err == nil {
		t.Fatal("a snapshot with a claim still unsettled")
	}
	if _, _, _, err := mk.freeze(); err != nil {
		t.Fatalf("the registry stays frozen after a failed snapshot: %v", err)
	}
}

// TestKeysLoadSnapshotRefusesShort: a section cut short is an error, not
// a registry part filled and trusted.
func TestKeysLoadSnapshotRefusesShort(t *testing.T) {
	mk := NewMemoryKeys(KeysConfig{})
	_ = mk.RecordMany(context.Background(), []keyedVote{{voteID{1}, time.Now()}, {voteID{2}, time.Now()}})
	var buf bytes.Buffer
	if err := (&KeysSnapshot{s: &Service{cfg: Config{PublishTimeout: time.Second}}, mk: mk, covered: 7}).Write(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	for _, n := range []int{0, 8, len(b) - 30, len(b) - 1} {
		if _, err := NewMemoryKeys(KeysConfig{}).LoadSnapshot(bytes.NewReader(b[:n]), uint64(n)); err == nil {
			t.Fatalf("a section cut to %d of %d bytes loaded", n, len(b))
		}
	}
	if _, err := mk.LoadSnapshot(bytes.NewReader(b), uint64(len(b))); err == nil {
		t.Fatal("loaded into a registry in use")
	}
}
