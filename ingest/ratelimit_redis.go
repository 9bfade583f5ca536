package ingest

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"net/netip"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// RedisLimiter keeps the limit in Redis (GCRA, through go-redis/redis_rate),
// shared by every ingest node: choose it when a client's votes reach
// several nodes. When Redis cannot answer it lets the vote through: a rate
// limit is a soft defence, and the log stays the truth.
type RedisLimiter struct {
	lim    *redis_rate.Limiter
	limit  redis_rate.Limit
	prefix string
}

var _ Limiter = (*RedisLimiter)(nil)

// NewRedisLimiter returns a limiter of perSecond votes/s per client on rdb.
// Its keys start with prefix; zero value means "pollcast".
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
