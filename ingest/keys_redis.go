package ingest

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisKeys keeps the idempotency keys in Redis, shared by every ingest
// node: one key per vote ID, "p" while an attempt holds it (with a TTL, so
// a node that dies mid-publish frees it) and "c" once the vote is stored,
// expiring with the window. A stored keyed vote costs about 100 bytes of
// Redis memory for the window.
//
// Its keys share the hash-tag groups and the "complete" markers of
// RedisVoters with the same prefix: a group that lost its data loses its
// marker, claims answer keyLost, and the registry is rebuilt from the log
// with the voters.
type RedisKeys struct {
	rdb     redis.UniversalClient
	prefix  string
	window  time.Duration
	pending time.Duration
}

var _ Keys = (*RedisKeys)(nil)

// RedisKeysConfig configures NewRedisKeys.
type RedisKeysConfig struct {
	KeysConfig
	// Prefix starts every key; the same as RedisVoters'. Zero value means "pollcast".
	Prefix string
	// PendingTTL is how long an unfinished claim holds a key, as
	// RedisVotersConfig.PendingTTL for a voter. Zero value means 3m.
	PendingTTL time.Duration
}

// NewRedisKeys returns a registry on rdb.
func NewRedisKeys(rdb redis.UniversalClient, cfg RedisKeysConfig) (*RedisKeys, error) {
	if rdb == nil {
		return nil, errors.New("ingest: redis client is nil")
	}
	return &RedisKeys{rdb: rdb, prefix: cmp.Or(cfg.Prefix, "pollcast"), window: cmp.Or(cfg.Window, DefaultIdempotencyWindow),
		pending: cmp.Or(cfg.PendingTTL, 3*time.Minute)}, nil
}

// group returns the hash tag of id's group: that of RedisVoters' groups.
func (r *RedisKeys) group(id voteID) string {
	return r.prefix + ":{v" + strconv.Itoa(int(id[0])%voterGroups) + "}"
}

func (r *RedisKeys) key(id voteID) string {
	return r.group(id) + ":key:" + base64.RawURLEncoding.EncodeToString(id[:])
}

// keyClaimScript: KEYS[1] the key, KEYS[2] its group's marker (same slot),
// ARGV[1] pending TTL in ms. Returns a keyState.
var keyClaimScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[2]) == 0 then return 3 end
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], 'p', 'PX', ARGV[1])
  return 0
end
if v == 'c' then return 1 end
return 2
`)

// keyReleaseScript deletes a claim that is still pending.
var keyReleaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == 'p' then return redis.call('DEL', KEYS[1]) end
return 0
`)

// keyStoreScript: ARGV[1] the TTL in ms left of the window. A stored key
// keeps its TTL.
var keyStoreScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == 'c' then return 0 end
redis.call('SET', KEYS[1], 'c', 'PX', ARGV[1])
return 1
`)

// Claim implements Keys.
func (r *RedisKeys) Claim(ctx context.Context, id voteID, _ time.Time) (keyState, error) {
	keys := []string{r.key(id), r.group(id) + ":complete"}
	n, err := keyClaimScript.Run(ctx, r.rdb, keys, r.pending.Milliseconds()).Int()
	if err != nil {
		return 0, fmt.Errorf("ingest: redis claim key: %w", err)
	}
	return keyState(n), nil
}

// ttl returns what is left of the window of a vote made at at, in ms, or
// 0 when it is over.
func (r *RedisKeys) ttl(at, now time.Time) int64 {
	return max(0, (at.Add(r.window).Sub(now)).Milliseconds())
}

// Finish implements Keys.
func (r *RedisKeys) Finish(ctx context.Context, id voteID, at time.Time, stored bool) error {
	var err error
	if ttl := r.ttl(at, time.Now()); stored && ttl > 0 {
		err = keyStoreScript.Run(ctx, r.rdb, []string{r.key(id)}, ttl).Err()
	} else {
		err = keyReleaseScript.Run(ctx, r.rdb, []string{r.key(id)}).Err()
	}
	if err != nil {
		return fmt.Errorf("ingest: redis finish key: %w", err)
	}
	return nil
}

// RecordMany implements Keys: one pipeline.
func (r *RedisKeys) RecordMany(ctx context.Context, vs []keyedVote) error {
	now := time.Now()
	n := 0
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, v := range vs {
			if ttl := r.ttl(v.at, now); ttl > 0 {
				keyStoreScript.Eval(ctx, p, []string{r.key(v.id)}, ttl) // EVAL: see RedisVoters.RecordMany
				n++
			}
		}
		return nil
	})
	if n == 0 {
		return nil
	}
	if err != nil {
		return fmt.Errorf("ingest: redis record keys: %w", err)
	}
	return nil
}
