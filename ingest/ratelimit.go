package ingest

import (
	"context"
	"net/netip"
	"time"
)

// Limiter is the per-client vote rate limit: rate votes/s with bursts of
// 4× that, per client prefix (see clientPrefix). Allow takes one vote's
// worth, or says how long until there is one. The Service calls it for
// every untrusted vote with a client address, before anything else. An
// error is logged and ok still decides: an implementation that cannot
// answer says ok, since a rate limit is a soft defence. Implementations
// are safe for concurrent use.
//
// MemoryLimiter (ratelimit_memory.go) is the default; RedisLimiter
// (ratelimit_redis.go) shares the limit between ingest nodes.
type Limiter interface {
	Allow(ctx context.Context, client netip.Prefix) (ok bool, retryAfter time.Duration, err error)
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
