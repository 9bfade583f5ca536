package ingest

import (
	"context"
	"encoding/binary"
	"sync"
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
	shards [64]voterShard
}

type voterShard struct {
	mu sync.Mutex
	m  map[voterKey]claim
}

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
	return &v.shards[binary.LittleEndian.Uint64(k[:8])%uint64(len(v.shards))]
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
	if c, ok := s.m[k]; !ok || !c.committed {
		c.vote, c.committed = id, true
		s.m[k] = c
	}
	s.mu.Unlock()
	return nil
}

// RecordMany implements Voters.
func (v *MemoryVoters) RecordMany(ctx context.Context, vs []voterVote) error {
	for _, x := range vs {
		_ = v.Record(ctx, x.key, x.id)
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
