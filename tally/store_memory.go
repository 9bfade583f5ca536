package tally

import (
	"context"
	"maps"
	"sync"
	"time"

	"github.com/pollcast/pollcast/poll"
)

// MemoryStore keeps counters in this process's memory: the store of the
// single-process mode. It starts empty, so every shard is rebuilt from the
// log at start; choose the Redis store when several tally processes share
// the work or when a restart must not replay the log.
type MemoryStore struct {
	mu    sync.RWMutex // guards polls (the map itself)
	polls map[string]*memPoll
	marks sync.Map // shard → *memShard
}

var _ Store = (*MemoryStore)(nil)

type memShard struct {
	mu   sync.Mutex // held for the whole of an Apply: fencing and atomicity
	mark uint64
}

type memPoll struct {
	mu        sync.Mutex
	total     int64
	anonymous int64
	version   int64
	options   map[string]int64
	voters    map[[16]byte]struct{}
	updatedAt time.Time
}

// NewMemoryStore returns an empty store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{polls: map[string]*memPoll{}}
}

func (s *MemoryStore) shard(n int) *memShard {
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

// Apply implements Store.
func (s *MemoryStore) Apply(_ context.Context, b Batch) error {
	sh := s.shard(b.Shard)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.mark != b.Prev {
		return ErrFenced
	}
	for id, d := range b.Polls {
		p := s.poll(id)
		p.mu.Lock()
		p.total += d.Total
		p.anonymous += d.Anonymous
		p.version += d.Total
		for o, n := range d.Options {
			p.options[o] += n
		}
		for _, v := range d.Voters {
			p.voters[v] = struct{}{}
		}
		if d.At.After(p.updatedAt) {
			p.updatedAt = d.At
		}
		p.mu.Unlock()
	}
	sh.mark = b.Last
	return nil
}

func (s *MemoryStore) poll(id string) *memPoll {
	s.mu.RLock()
	p, ok := s.polls[id]
	s.mu.RUnlock()
	if ok {
		return p
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok = s.polls[id]; !ok {
		p = &memPoll{options: map[string]int64{}, voters: map[[16]byte]struct{}{}}
		s.polls[id] = p
	}
	return p
}

// Counts implements Store.
func (s *MemoryStore) Counts(_ context.Context, pollID string) (poll.Counts, error) {
	c := poll.Counts{PollID: pollID, Options: map[string]int64{}}
	s.mu.RLock()
	p, ok := s.polls[pollID]
	s.mu.RUnlock()
	if !ok {
		return c, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	c.Total, c.Version, c.UpdatedAt = p.total, p.version, p.updatedAt
	c.Voters = int64(len(p.voters)) + p.anonymous
	c.Options = maps.Clone(p.options)
	return c, nil
}

// DeletePoll implements Store.
func (s *MemoryStore) DeletePoll(_ context.Context, pollID string) error {
	s.mu.Lock()
	delete(s.polls, pollID)
	s.mu.Unlock()
	return nil
}

// Ping implements Store; memory always answers.
func (s *MemoryStore) Ping(context.Context) error { return nil }
