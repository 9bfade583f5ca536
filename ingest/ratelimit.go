package ingest

import (
	"cmp"
	"context"
	"fmt"
	"hash/maphash"
	"math"
	"net/netip"
	"sync"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"
)

// Limiter is the per-client vote rate limit: rate votes/s with bursts of
// 4× that, per client prefix (see clientPrefix). Allow takes one vote's
// worth, or says how long until there is one. Implementations are safe for
// concurrent use.
type Limiter interface {
	Allow(ctx context.Context, client netip.Prefix) (ok bool, retryAfter time.Duration, err error)
}

// MemoryLimiter keeps token buckets in this process: the limit of a single
// node. Buckets that sat idle long enough to be full again are dropped by a
// janitor, so memory follows the number of recently active clients. Choose
// RedisLimiter when a client's votes reach several ingest nodes.
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

// burstOf is the burst allowed at a rate: 4× the rate, at least 1.
func burstOf(perSecond float64) int {
	return max(1, int(4*perSecond))
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

// RedisLimiter keeps the limit in Redis (GCRA, through go-redis/redis_rate),
// shared by every ingest node. When Redis cannot answer it lets the vote
// through: a rate limit is a soft defence, and the log stays the truth.
type RedisLimiter struct {
	lim    *redis_rate.Limiter
	limit  redis_rate.Limit
	prefix string
}

var _ Limiter = (*RedisLimiter)(nil)

// NewRedisLimiter returns a limiter of perSecond votes/s per client on rdb.
func NewRedisLimiter(rdb redis.UniversalClient, prefix string, perSecond float64) *RedisLimiter {
	return &RedisLimiter{
		lim: redis_rate.NewLimiter(rdb),
		// redis_rate counts whole events per period: a minute keeps fractional rates exact enough.
		limit:  redis_rate.Limit{Rate: max(1, int(math.Round(perSecond*60))), Period: time.Minute, Burst: burstOf(perSecond)},
		prefix: cmp.Or(prefix, "pollcast") + ":rate:",
	}
}

// Allow implements Limiter.
func (l *RedisLimiter) Allow(ctx context.Context, client netip.Prefix) (bool, time.Duration, error) {
	res, err := l.lim.Allow(ctx, l.prefix+client.String(), l.limit)
	if err != nil {
		return true, 0, fmt.Errorf("ingest: redis rate limit: %w", err)
	}
	if res.Allowed == 0 {
		return false, res.RetryAfter, nil
	}
	return true, 0, nil
}
