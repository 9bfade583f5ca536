package ingest

import (
	"context"
	"hash/maphash"
	"math"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// MemoryLimiter keeps token buckets in this process: the limit of a single
// node, and the default. Buckets that sat idle long enough to be full again
// are dropped by a janitor, so memory follows the number of recently active
// clients. Choose RedisLimiter when a client's votes reach several ingest
// nodes.
type MemoryLimiter struct {
	rate   rate.Limit
	burst  int
	seed   maphash.Seed
	shards [32]limiterShard
}

type limiterShard struct {
	mu sync.Mutex
	m  map[netip.Prefix]*bucket
}

type bucket struct {
	lim      *rate.Limiter
	lastSeen time.Time
}

var _ Limiter = (*MemoryLimiter)(nil)

// NewMemoryLimiter returns a limiter of perSecond votes/s per client.
func NewMemoryLimiter(perSecond float64) *MemoryLimiter {
	l := &MemoryLimiter{rate: rate.Limit(perSecond), burst: burstOf(perSecond), seed: maphash.MakeSeed()}
	for i := range l.shards {
		l.shards[i].m = make(map[netip.Prefix]*bucket)
	}
	return l
}

// Allow implements Limiter.
func (l *MemoryLimiter) Allow(_ context.Context, client netip.Prefix) (bool, time.Duration, error) {
	ok, wait := l.allowAt(client, time.Now())
	return ok, wait, nil
}

// allowAt takes one token for the client at time now, or returns how long
// until one is there.
func (l *MemoryLimiter) allowAt(key netip.Prefix, now time.Time) (bool, time.Duration) {
	s := &l.shards[maphash.Comparable(l.seed, key)%uint64(len(l.shards))]
	s.mu.Lock()
	b, ok := s.m[key]
	if !ok {
		b = &bucket{lim: rate.NewLimiter(l.rate, l.burst)}
		s.m[key] = b
	}
	b.lastSeen = now
	r := b.lim.ReserveN(now, 1)
	s.mu.Unlock()
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// run drops idle buckets until ctx ends.
func (l *MemoryLimiter) run(ctx context.Context) {
	// A bucket idle for burst/rate seconds is full again: forgetting it changes nothing.
	idle := time.Duration(math.Ceil(float64(l.burst)/float64(l.rate))) * time.Second
	t := time.NewTicker(max(idle, time.Minute))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			l.dropIdle(now, idle)
		}
	}
}

// dropIdle forgets the buckets not used for longer than idle before now.
func (l *MemoryLimiter) dropIdle(now time.Time, idle time.Duration) {
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		for k, b := range s.m {
			if now.Sub(b.lastSeen) > idle {
				delete(s.m, k)
			}
		}
		s.mu.Unlock()
	}
}
