package ingest

import (
	"context"
	"encoding/binary"
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// claim is a voter's vote on its way to the log: the vote's ID and how
// many attempts (a retry shares the claim) are in flight.
type claim struct {
	vote     voteID
	inflight int32
}

// MemoryVoters keeps the registry in this process's memory: the default of
// the single-process mode. It is not durable: Service.Rebuild refills it
// from the log at start. Choose RedisVoters when several ingest nodes take
// votes for the same polls.
//
// Each of its shards keeps the stored votes, which are forgotten only when
// their poll is purged (Forget), in a storedVotes table, and the claims of votes
// on their way to the log in a map. A voter with a stored vote is answered
// from the table alone.
type MemoryVoters struct {
	shards   [64]voterShard
	reserved atomic.Bool
}

type voterShard struct {
	mu      sync.Mutex
	stored  storedVotes
	pending map[voterKey]claim
}

// reserver is a registry that can make room for many voters at once.
type reserver interface {
	// reserve makes room for about n voters, once: later calls do nothing.
	reserve(n uint64)
}

// maxReservePerShard bounds what reserve makes room for: 4 Mi voters a
// shard, 256 Mi in all.
const maxReservePerShard = 1 << 22

var (
	_ Voters   = (*MemoryVoters)(nil)
	_ reserver = (*MemoryVoters)(nil)
)

// NewMemoryVoters returns an empty registry.
func NewMemoryVoters() *MemoryVoters {
	v := &MemoryVoters{}
	seed := maphash.MakeSeed()
	for i := range v.shards {
		v.shards[i].stored = newStoredVotes(seed)
		v.shards[i].pending = make(map[voterKey]claim)
	}
	return v
}

func (v *MemoryVoters) shard(k voterKey) *voterShard {
	return &v.shards[v.shardIndex(k)]
}

func (v *MemoryVoters) shardIndex(k voterKey) int {
	return int(binary.LittleEndian.Uint64(k[:8]) % uint64(len(v.shards)))
}

// reserve implements reserver: at the start of a rebuild, it sizes the
// tables of stored votes for n voters in all, so that they do not double
// step by step.
func (v *MemoryVoters) reserve(n uint64) {
	if v.reserved.Swap(true) {
		return
	}
	per := n / uint64(len(v.shards))
	per = min(per+per/32+64, maxReservePerShard) // shards fill unevenly
	for i := range v.shards {
		s := &v.shards[i]
		s.mu.Lock()
		s.stored.reserve(int(per))
		s.mu.Unlock()
	}
}

// Claim implements Voters.
func (v *MemoryVoters) Claim(_ context.Context, k voterKey, id voteID) (claimResult, error) {
	s := v.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if stored, ok := s.stored.get(k); ok {
		if stored != id {
			return claimTaken, nil
		}
		return claimStored, nil
	}
	c, ok := s.pending[k]
	if ok && c.vote != id {
		return claimTaken, nil
	}
	c.vote = id
	c.inflight++
	s.pending[k] = c
	return claimed, nil
}

// Finish implements Voters. Concurrent claims of the same vote are counted,
// so one failing retry does not release a claim another one still holds.
func (v *MemoryVoters) Finish(_ context.Context, k voterKey, _ voteID, stored bool) error {
	s := v.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.pending[k]
	if !ok {
		return nil
	}
	if stored {
		s.stored.add(k, c.vote)
	}
	if c.inflight--; c.inflight <= 0 {
		delete(s.pending, k)
		return nil
	}
	s.pending[k] = c
	return nil
}

// Record implements Voters.
func (v *MemoryVoters) Record(_ context.Context, k voterKey, id voteID) error {
	s := v.shard(k)
	s.mu.Lock()
	s.stored.add(k, id)
	s.mu.Unlock()
	return nil
}

// RecordMany implements Voters. It groups the votes by shard and takes
// each shard's lock once: a rebuild hands it thousands at a time. A voter's
// votes keep their order.
func (v *MemoryVoters) RecordMany(ctx context.Context, vs []voterVote) error {
	if len(vs) < 2*len(v.shards) {
		for _, x := range vs {
			_ = v.Record(ctx, x.key, x.id)
		}
		return nil
	}
	// A counting sort by shard: the votes of shard i are
	// order[start[i]:start[i+1]], in the order given.
	var start [len(v.shards) + 1]int
	for _, x := range vs {
		start[v.shardIndex(x.key)+1]++
	}
	for i := 1; i < len(start); i++ {
		start[i] += start[i-1]
	}
	next := start
	order := make([]int32, len(vs))
	for i, x := range vs {
		si := v.shardIndex(x.key)
		order[next[si]] = int32(i)
		next[si]++
	}
	for si := range v.shards {
		in := order[start[si]:start[si+1]]
		if len(in) == 0 {
			continue
		}
		s := &v.shards[si]
		s.mu.Lock()
		for _, i := range in {
			s.stored.add(vs[i].key, vs[i].id)
		}
		s.mu.Unlock()
	}
	return nil
}

// Voted implements Voters.
func (v *MemoryVoters) Voted(_ context.Context, k voterKey) (bool, error) {
	s := v.shard(k)
	s.mu.Lock()
	_, ok := s.stored.get(k)
	s.mu.Unlock()
	return ok, nil
}

// Durable implements Voters: memory is lost with the process.
func (v *MemoryVoters) Durable() bool { return false }

// Complete implements Voters: memory loses nothing while the process lives.
func (v *MemoryVoters) Complete(context.Context) (bool, error) { return true, nil }

// MarkComplete implements Voters.
func (v *MemoryVoters) MarkComplete(context.Context) error { return nil }

// Forget implements Voters.
func (v *MemoryVoters) Forget(_ context.Context, ks []voterKey) error {
	for _, k := range ks {
		s := v.shard(k)
		s.mu.Lock()
		s.stored.remove(k)
		delete(s.pending, k)
		s.mu.Unlock()
	}
	return nil
}

// Len returns the number of voters remembered: with a stored vote or a
// claim in flight.
func (v *MemoryVoters) Len() int {
	n := 0
	for i := range v.shards {
		s := &v.shards[i]
		s.mu.Lock()
		n += s.stored.len()
		for k := range s.pending {
			if _, ok := s.stored.get(k); !ok {
				n++
			}
		}
		s.mu.Unlock()
	}
	return n
}

// storedVotes maps voters to their first stored vote: open addressing with
// linear probing in a power-of-two table kept at most 3/4 full, growing by
// doubling, never shrinking. It does what a map[voterKey]voteID does,
// faster and in less memory: an insert touches one cache line, and a rebuild
// inserts every voter of the log. Growing moves every vote at once, under
// the shard's lock, once per doubling; reserve sizes the tables ahead of
// the start-up read of the log, so that they do not double step by step.
//
// Keys are hashed with the registry's seed: keys written to the log by
// others than ingest are not trusted to be spread. It is made by
// newStoredVotes; it is not safe for concurrent use.
type storedVotes struct {
	seed  maphash.Seed
	slots []storedVote // a zero key marks an empty slot
	n     int          // non-zero keys held
	zero  *voteID      // the vote of the zero key
}

type storedVote struct {
	key  voterKey
	vote voteID
}

// minStoredSlots is the size of a table's first allocation.
const minStoredSlots = 16

func newStoredVotes(seed maphash.Seed) storedVotes {
	return storedVotes{seed: seed}
}

func (t *storedVotes) len() int {
	if t.zero != nil {
		return t.n + 1
	}
	return t.n
}

// get returns the vote stored for k.
func (t *storedVotes) get(k voterKey) (voteID, bool) {
	if k == (voterKey{}) {
		if t.zero == nil {
			return voteID{}, false
		}
		return *t.zero, true
	}
	if len(t.slots) == 0 {
		return voteID{}, false
	}
	mask := uint64(len(t.slots) - 1)
	for i := maphash.Comparable(t.seed, k) & mask; ; i = (i + 1) & mask {
		switch s := &t.slots[i]; s.key {
		case voterKey{}:
			return voteID{}, false
		case k:
			return s.vote, true
		}
	}
}

// add stores id as k's vote unless k has one already: the first stays.
func (t *storedVotes) add(k voterKey, id voteID) {
	if k == (voterKey{}) {
		if t.zero == nil {
			z := id // not &id: id would be moved to the heap on every call
			t.zero = &z
		}
		return
	}
	if 4*(t.n+1) > 3*len(t.slots) {
		t.grow(t.n + 1)
	}
	t.put(k, id)
}

// remove deletes k and its vote, if there. The votes after k in its run of
// full slots move back into the hole where their probe passes it
// (backward-shift deletion), so that every get still finds its vote with
// no tombstones left behind.
func (t *storedVotes) remove(k voterKey) {
	if k == (voterKey{}) {
		t.zero = nil
		return
	}
	if len(t.slots) == 0 {
		return
	}
	mask := uint64(len(t.slots) - 1)
	hole := maphash.Comparable(t.seed, k) & mask
	for ; t.slots[hole].key != k; hole = (hole + 1) & mask {
		if t.slots[hole].key == (voterKey{}) {
			return
		}
	}
	for j := (hole + 1) & mask; t.slots[j].key != (voterKey{}); j = (j + 1) & mask {
		home := maphash.Comparable(t.seed, t.slots[j].key) & mask
		// The vote at j stays unless its probe from home passes the hole:
		// home is cyclically outside (hole, j].
		var stays bool
		if hole < j {
			stays = hole < home && home <= j
		} else {
			stays = hole < home || home <= j
		}
		if !stays {
			t.slots[hole] = t.slots[j]
			hole = j
		}
	}
	t.slots[hole] = storedVote{}
	t.n--
}

// put adds k, not zero, to a table with room for it, unless it is there.
func (t *storedVotes) put(k voterKey, id voteID) {
	mask := uint64(len(t.slots) - 1)
	for i := maphash.Comparable(t.seed, k) & mask; ; i = (i + 1) & mask {
		switch s := &t.slots[i]; s.key {
		case voterKey{}:
			s.key, s.vote = k, id
			t.n++
			return
		case k:
			return
		}
	}
}

// reserve makes room for n voters in all.
func (t *storedVotes) reserve(n int) {
	if 4*n > 3*len(t.slots) {
		t.grow(n)
	}
}

// grow moves the votes to a table with room for n of them.
func (t *storedVotes) grow(n int) {
	size := max(minStoredSlots, len(t.slots))
	for 4*n > 3*size {
		size *= 2
	}
	old := t.slots
	t.slots, t.n = make([]storedVote, size), 0
	for i := range old {
		if old[i].key != (voterKey{}) {
			t.put(old[i].key, old[i].vote)
		}
	}
}
