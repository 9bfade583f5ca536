package ingest

import (
	"context"
	"encoding/binary"
	"sync"
	"sync/atomic"
)

type claim struct {
	vote      voteID
	inflight  int32
	committed bool
}

// MemoryVoters keeps the registry in this process's memory: the default of
// the single-process mode. It is not durable: Service.Rebuild refills it
// from the log at start. Choose RedisVoters when several ingest nodes take
// votes for the same polls.
type MemoryVoters struct {
	shards   [64]voterShard
	reserved atomic.Bool
}

// reserver is a registry that can make room for many voters at once.
type reserver interface {
	// reserve makes room for about n voters, once: later calls do nothing.
	reserve(n uint64)
}

var _ reserver = (*MemoryVoters)(nil)

type voterShard struct {
	mu sync.Mutex
	m  map[voterKey]claim
}

// maxReservePerShard bounds what reserve makes room for: 4 Mi voters a
// shard, 256 Mi in all.
const maxReservePerShard = 1 << 22

var _ Voters = (*MemoryVoters)(nil)

// NewMemoryVoters returns an empty registry.
func NewMemoryVoters() *MemoryVoters {
	v := &MemoryVoters{}
	for i := range v.shards {
		v.shards[i].m = make(map[voterKey]claim)
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
// empty maps for n voters in all, so that they do not grow step by step
// (a third of the time of filling them). A shard holding voters already
// is left as it is.
func (v *MemoryVoters) reserve(n uint64) {
	if v.reserved.Swap(true) {
		return
	}
	per := n / uint64(len(v.shards))
	per = min(per+per/32+64, maxReservePerShard) // shards fill unevenly
	if per < 1024 {
		return
	}
	for i := range v.shards {
		s := &v.shards[i]
		s.mu.Lock()
		if len(s.m) == 0 {
			s.m = make(map[voterKey]claim, per)
		}
		s.mu.Unlock()
	}
}

// Claim implements Voters.
func (v *MemoryVoters) Claim(_ context.Context, k voterKey, id voteID) (claimResult, error) {
	s := v.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.m[k]
	switch {
	case ok && c.vote != id:
		return claimTaken, nil
	case ok && c.committed:
		return claimStored, nil
	}
	c.vote = id
	c.inflight++
	s.m[k] = c
	return claimed, nil
}

// Finish implements Voters. Concurrent claims of the same vote are counted,
// so one failing retry does not release a claim another one still holds.
func (v *MemoryVoters) Finish(_ context.Context, k voterKey, _ voteID, stored bool) error {
	s := v.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.m[k]
	if !ok {
		return nil
	}
	c.inflight--
	if stored {
		c.committed = true
	}
	if !c.committed && c.inflight <= 0 {
		delete(s.m, k)
		return nil
	}
	s.m[k] = c
	return nil
}

// Record implements Voters.
func (v *MemoryVoters) Record(_ context.Context, k voterKey, id voteID) error {
	s := v.shard(k)
	s.mu.Lock()
	s.record(k, id)
	s.mu.Unlock()
	return nil
}

// record is Record with s locked.
func (s *voterShard) record(k voterKey, id voteID) {
	if c, ok := s.m[k]; !ok || !c.committed {
		c.vote, c.committed = id, true
		s.m[k] = c
	}
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
			s.record(vs[i].key, vs[i].id)
		}
		s.mu.Unlock()
	}
	return nil
}

// Voted implements Voters.
func (v *MemoryVoters) Voted(_ context.Context, k voterKey) (bool, error) {
	s := v.shard(k)
	s.mu.Lock()
	c, ok := s.m[k]
	s.mu.Unlock()
	return ok && c.committed, nil
}

// Durable implements Voters: memory is lost with the process.
func (v *MemoryVoters) Durable() bool { return false }

// Complete implements Voters: memory loses nothing while the process lives.
func (v *MemoryVoters) Complete(context.Context) (bool, error) { return true, nil }

// MarkComplete implements Voters.
func (v *MemoryVoters) MarkComplete(context.Context) error { return nil }

// Len returns the number of voters remembered.
func (v *MemoryVoters) Len() int {
	n := 0
	for i := range v.shards {
		s := &v.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}
