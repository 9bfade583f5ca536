package ingest

import (
	"encoding/binary"
	"sync"
)

// voterKey is the keyed hash that stands for one voter of one poll.
type voterKey [16]byte

// voteID is the binary form of a vote ID.
type voteID [16]byte

type claim struct {
	vote      voteID
	inflight  int32
	committed bool
}

// Voters remembers which voter voted in which poll, in memory: the
// single-process dedupe registry. It is rebuilt from the log at start (see
// Service.Rebuild), so a restart forgets nobody.
//
// A claim is taken before a vote is published and committed once the log
// stored it; a failed publish releases it, so a voter whose vote was not
// stored can vote again. Two concurrent votes of one voter cannot both claim.
type Voters struct {
	shards [64]voterShard
}

type voterShard struct {
	mu sync.Mutex
	m  map[voterKey]claim
}

// NewVoters returns an empty registry.
func NewVoters() *Voters {
	v := &Voters{}
	for i := range v.shards {
		v.shards[i].m = make(map[voterKey]claim)
	}
	return v
}

func (v *Voters) shard(k voterKey) *voterShard {
	return &v.shards[binary.LittleEndian.Uint64(k[:8])%uint64(len(v.shards))]
}

// claimResult is the answer of Claim.
type claimResult int

const (
	claimed     claimResult = iota // the voter is reserved for this vote: publish it
	claimStored                    // this very vote (same id) is already stored: answer as before
	claimTaken                     // another vote of the voter holds the claim
)

// Claim reserves the voter for vote id. A retry of the same vote (same id)
// shares an in-flight claim, and learns when the vote is already stored.
func (v *Voters) Claim(k voterKey, id voteID) claimResult {
	s := v.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.m[k]
	switch {
	case ok && c.vote != id:
		return claimTaken
	case ok && c.committed:
		return claimStored
	}
	c.vote = id
	c.inflight++
	s.m[k] = c
	return claimed
}

// Finish ends a claim taken by Claim: stored reports whether the log stored
// the vote.
func (v *Voters) Finish(k voterKey, stored bool) {
	s := v.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.m[k]
	if !ok {
		return
	}
	c.inflight--
	if stored {
		c.committed = true
	}
	if !c.committed && c.inflight <= 0 {
		delete(s.m, k)
		return
	}
	s.m[k] = c
}

// Record notes that the voter voted with vote id, without claiming
// anything: for polls without dedupe and for the rebuild from the log. The
// first stored vote of a voter stays the one remembered.
func (v *Voters) Record(k voterKey, id voteID) {
	s := v.shard(k)
	s.mu.Lock()
	if c, ok := s.m[k]; !ok || !c.committed {
		c.vote, c.committed = id, true
		s.m[k] = c
	}
	s.mu.Unlock()
}

// Voted reports whether a stored vote of the voter is known.
func (v *Voters) Voted(k voterKey) bool {
	s := v.shard(k)
	s.mu.Lock()
	c, ok := s.m[k]
	s.mu.Unlock()
	return ok && c.committed
}

// Len returns the number of voters remembered.
func (v *Voters) Len() int {
	n := 0
	for i := range v.shards {
		s := &v.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}
