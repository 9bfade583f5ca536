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

// limiter is a per-client token bucket: Rate votes/s with bursts of Burst.
// Buckets that sat idle long enough to be full again are dropped by a
// janitor, so memory follows the number of recently active clients.
type limiter struct {
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

func newLimiter(perSecond float64, burst int) *limiter {
	l := &limiter{rate: rate.Limit(perSecond), burst: burst, seed: maphash.MakeSeed()}
	for i := range l.shards {
		l.shards[i].m = make(map[netip.Prefix]*bucket)
	}
	return l
}

// clientPrefix is the unit a client is limited and deduplicated by: the
// address for IPv4, the /64 for IPv6 (one subscriber's usual allocation,
// within which addresses rotate freely).
func clientPrefix(ip netip.Addr) netip.Prefix {
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p
	}
	p, _ := ip.Prefix(32)
	return p
}

// allow takes one token for the client, or returns how long until one is there.
func (l *limiter) allow(ip netip.Addr, now time.Time) (bool, time.Duration) {
	key := clientPrefix(ip)
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
func (l *limiter) run(ctx context.Context) {
	// A bucket idle for burst/rate seconds is full again: forgetting it changes nothing.
	idle := time.Duration(math.Ceil(float64(l.burst)/float64(l.rate))) * time.Second
	t := time.NewTicker(max(idle, time.Minute))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
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
	}
}
