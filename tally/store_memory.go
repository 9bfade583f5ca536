package tally

import (
	"context"
	"maps"
	"sync"
	"time"

	"github.com/pollcast/pollcast/poll"
)

// MemoryStore keeps counters in this process's memory: the store of the
// single-process mode, and the default. It starts empty, so every shard is
// rebuilt from the log at start (set Config.DirectRead with it, to rebuild
// with direct reads), or from a snapshot (Snapshot, LoadSnapshot) and the
// log after it; choose the Redis store when several tally processes share
// the work.
//
// Distinct voters are kept as 64-bit keyed hashes of their keys (voterSeed) in a voterSet,
// 11 to 21 bytes per voter: two voters of one poll are taken for one with a
// probability near n²/2⁶⁵, one in 300,000 for ten million.
//
// Apply locks only its shard and, in turn, each poll it touches; Counts
// locks only its poll. Both are safe for concurrent use.
type MemoryStore struct {
	seed voterSeed // keys the voter hashes; saved with snapshots

	// snap is held shared by Apply, ResetShard and DeletePoll, and
	// exclusively while a snapshot copies the store (see Snapshot):
	// counters, watermarks and deletions are copied as one, never half way
	// through a batch, a reset or a deletion.
	snap sync.RWMutex

	mu      sync.RWMutex // guards polls (the map itself) and deleted
	polls   map[string]*memPoll
	deleted map[string]struct{} // polls deleted: a batch in flight must not bring them back

	marks sync.Map // shard → *memShard
}

var _ Store = (*MemoryStore)(nil)

type memShard struct {
	mu   sync.Mutex // held for the whole of an Apply: fencing and atomicity
	mark uint64
}

type memPoll struct {
	shard     int // the shard whose batches made it: what ResetShard forgets; saved with snapshots
	mu        sync.Mutex
	total     int64
	anonymous int64
	version   int64
	options   map[string]int64
	voters    voterSet
	updatedAt time.Time
}

// NewMemoryStore returns an empty store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{seed: newVoterSeed(), polls: map[string]*memPoll{}, deleted: map[string]struct{}{}}
}

func (s *MemoryStore) shard(n int) *memShard {
	if v, ok := s.marks.Load(n); ok {
		return v.(*memShard)
	}
	v, _ := s.marks.LoadOrStore(n, &memShard{})
	return v.(*memShard)
}

// Watermark implements Store.
func (s *MemoryStore) Watermark(_ context.Context, shard int) (uint64, error) {
	sh := s.shard(shard)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.mark, nil
}

// Apply implements Store. It cannot fail but for ErrFenced.
func (s *MemoryStore) Apply(_ context.Context, b Batch) error {
	s.snap.RLock()
	defer s.snap.RUnlock()
	sh := s.shard(b.Shard)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.mark != b.Prev {
		return ErrFenced
	}
	for id, d := range b.Polls {
		p := s.poll(id, b.Shard)
		if p == nil {
			continue // deleted
		}
		p.mu.Lock()
		p.total += d.Total
		p.anonymous += d.Anonymous
		p.version += d.Total
		for o, n := range d.Options {
			p.options[o] += n
		}
		for _, v := range d.Voters {
			p.voters.add(s.seed.hash(v))
		}
		if d.At.After(p.updatedAt) {
			p.updatedAt = d.At
		}
		p.mu.Unlock()
	}
	sh.mark = b.Last
	return nil
}

// poll returns the counters of a poll, made on first use by a batch of
// shard; nil for a deleted poll.
func (s *MemoryStore) poll(id string, shard int) *memPoll {
	if p, ok := s.existing(id); ok {
		return p
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, gone := s.deleted[id]; gone {
		return nil
	}
	p, ok := s.polls[id]
	if !ok {
		p = &memPoll{shard: shard, options: map[string]int64{}}
		s.polls[id] = p
	}
	return p
}

// existing returns the counters of a poll that has them.
func (s *MemoryStore) existing(id string) (*memPoll, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	p, ok := s.polls[id]
	return p, ok
}

// HasVoter implements Store.
func (s *MemoryStore) HasVoter(_ context.Context, pollID string, voter [16]byte) (bool, error) {
	p, ok := s.existing(pollID)
	if !ok {
		return false, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.voters.has(s.seed.hash(voter)), nil
}

// Counts implements Store. The counts are a copy.
func (s *MemoryStore) Counts(_ context.Context, pollID string) (poll.Counts, error) {
	c := poll.Counts{PollID: pollID, Options: map[string]int64{}}
	p, ok := s.existing(pollID)
	if !ok {
		return c, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	c.Total, c.Version, c.UpdatedAt = p.total, p.version, p.updatedAt
	c.Voters = int64(p.voters.len()) + p.anonymous
	c.Options = maps.Clone(p.options)
	return c, nil
}

// DeletePoll implements Store. Votes of the poll applied later (a batch
// read before the catalog marked it deleted) are ignored. It holds snap
// shared, so a snapshot's copy is wholly before or after it.
func (s *MemoryStore) DeletePoll(_ context.Context, pollID string) error {
	s.snap.RLock()
	defer s.snap.RUnlock()
	s.mu.Lock()
	delete(s.polls, pollID)
	s.deleted[pollID] = struct{}{}
	s.mu.Unlock()
	return nil
}

// ResetShard implements Store. It holds the shard's lock, so no batch of
// the shard is half applied, the polls' map lock while it drops the
// shard's polls, so a reader sees them all before or all after, and snap
// shared, so a snapshot (which holds it exclusively) has the shard's
// watermark and polls both from before the reset or both from after.
// Batches of other shards go on meanwhile.
func (s *MemoryStore) ResetShard(_ context.Context, shard int, end uint64) (bool, error) {
	s.snap.RLock()
	defer s.snap.RUnlock()
	sh := s.shard(shard)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.mark <= end {
		return false, nil
	}
	s.mu.Lock()
	for id, p := range s.polls {
		if p.shard == shard {
			delete(s.polls, id)
		}
	}
	s.mu.Unlock()
	sh.mark = 0
	return true, nil
}

// Ping implements Store; memory always answers.
func (s *MemoryStore) Ping(context.Context) error { return nil }
