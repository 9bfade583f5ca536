package ingest

import (
	"cmp"
	"context"
	"sync"
	"time"
)

// MemoryKeys keeps the idempotency keys in this process's memory: the
// default of the single-process mode, rebuilt from the log at start with
// the voters (Rebuild, Remember), or from a snapshot (Service.SnapshotKeys,
// LoadSnapshot) and the log after it. Choose RedisKeys with RedisVoters.
//
// Its state is plain maps: the stored keys in generations, each the keys
// stored during one eighth of the window, dropped whole once all its keys
// are older than the window; and the claims in flight. Only the newest
// generation is ever written to; while a snapshot reads the generations
// (without the lock), stored keys wait in a map of their own (frozen) and
// join the generations when it is done. A keyed vote costs
// about 40 bytes (16 of ID, 8 of time, the map's overhead) for the window
// and up to an eighth of it more: 24 h of 1,000 keyed votes/s is about 3.5 GB.
type MemoryKeys struct {
	window time.Duration
	span   time.Duration // of a generation

	mu      sync.Mutex
	gens    []keyGen          // oldest first; new keys go to the last
	frozen  map[voteID]int64  // while a snapshot reads gens: the keys stored meanwhile
	pending map[voteID]uint64 // claims in flight, each with its number
	claims  uint64            // claims taken: numbers them, so a snapshot tells a new claim of a key from the one it saw
}

// keyGen is the keys stored from start on, for span: vote ID → the vote's
// time in Unix nanoseconds.
type keyGen struct {
	start int64
	ids   map[voteID]int64
}

// KeysConfig configures NewMemoryKeys and NewRedisKeys.
type KeysConfig struct {
	// Window is how long a stored key is recognised after its vote's time.
	// Zero value means DefaultIdempotencyWindow.
	Window time.Duration
}

var _ Keys = (*MemoryKeys)(nil)

// NewMemoryKeys returns an empty registry.
func NewMemoryKeys(cfg KeysConfig) *MemoryKeys {
	w := cmp.Or(cfg.Window, DefaultIdempotencyWindow)
	return &MemoryKeys{window: w, span: max(w/8, time.Millisecond), pending: map[voteID]uint64{}}
}

// Claim implements Keys.
func (k *MemoryKeys) Claim(_ context.Context, id voteID, now time.Time) (keyState, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.stored(id, now.UnixNano()) {
		return keyStored, nil
	}
	if _, ok := k.pending[id]; ok {
		return keyBusy, nil
	}
	k.claims++
	k.pending[id] = k.claims
	return keyClaimed, nil
}

// Finish implements Keys.
func (k *MemoryKeys) Finish(_ context.Context, id voteID, at time.Time, stored bool) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.pending, id)
	if stored {
		k.add(id, at.UnixNano(), time.Now().UnixNano())
	}
	return nil
}

// RecordMany implements Keys.
func (k *MemoryKeys) RecordMany(_ context.Context, vs []keyedVote) error {
	now := time.Now().UnixNano()
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, v := range vs {
		if !k.stored(v.id, now) {
			k.add(v.id, v.at.UnixNano(), now)
		}
	}
	return nil
}

// Len returns the number of keys held: stored (expired ones not yet
// dropped included) and claimed.
func (k *MemoryKeys) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := len(k.pending) + len(k.frozen)
	for _, g := range k.gens {
		n += len(g.ids)
	}
	return n
}

// stored reports whether id's vote is stored and within the window at now.
func (k *MemoryKeys) stored(id voteID, now int64) bool {
	at, ok := k.lookup(id)
	return ok && now-at < int64(k.window)
}

// lookup returns the time of id's stored vote, the newest if there are
// several (stored again past the window).
func (k *MemoryKeys) lookup(id voteID) (at int64, ok bool) {
	if at, ok := k.frozen[id]; ok {
		return at, true
	}
	for i := len(k.gens) - 1; i >= 0; i-- {
		if at, ok := k.gens[i].ids[id]; ok {
			return at, true
		}
	}
	return 0, false
}

// add stores id with its vote's time at, unless that is past the window,
// and drops the generations whose keys are all past it. While a snapshot
// reads the generations, it leaves them alone and stores id in frozen.
func (k *MemoryKeys) add(id voteID, at, now int64) {
	if k.frozen != nil {
		if now-at < int64(k.window) {
			k.frozen[id] = at
		}
		return
	}
	for len(k.gens) > 0 && now-(k.gens[0].start+int64(k.span)) >= int64(k.window) {
		k.gens[0] = keyGen{}
		k.gens = k.gens[1:]
	}
	if now-at >= int64(k.window) {
		return
	}
	if n := len(k.gens); n == 0 || now >= k.gens[n-1].start+int64(k.span) {
		k.gens = append(k.gens, keyGen{start: now, ids: map[voteID]int64{}})
	}
	k.gens[len(k.gens)-1].ids[id] = at
}
