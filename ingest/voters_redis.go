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

// RedisVoters keeps the dedupe registry in Redis, shared by every ingest
// node: one key per voter and poll, "p:<vote id>" while the vote is being
// published (with a TTL, so a node that dies mid-publish frees the voter)
// and "c:<vote id>" once the log stored it. It is durable: no rebuild from
// the log at start.
//
// Voter keys fall into voterGroups groups by a hash tag; each group has a
// marker key in its own slot, "<prefix>:{vN}:complete", that says the group
// holds every vote of the log. When Redis loses a group's data (a FLUSHALL,
// a Redis or Cluster node without persistence restarted) its marker goes
// with it: the claim script checks the marker of the voter's group in the
// same atomic step and answers claimLost, and the registry is rebuilt from
// the log before any vote of a deduplicated poll is admitted again. A
// restart from an older snapshot, or a failover to a lagging replica,
// brings the markers back with the data missing: run Redis with
// appendfsync always and without asynchronous failover for this registry.
type RedisVoters struct {
	rdb     redis.UniversalClient
	prefix  string
	pending time.Duration
}

// voterGroups is the number of hash-tag groups of voter keys: enough to
// spread them over a Redis Cluster's nodes.
const voterGroups = 64

var _ Voters = (*RedisVoters)(nil)

// RedisVotersConfig configures NewRedisVoters.
type RedisVotersConfig struct {
	// Prefix starts every key. Zero value means "pollcast".
	Prefix string
	// PendingTTL is how long an unfinished claim holds a voter. It must be
	// longer than it takes to learn the outcome of a vote whose
	// acknowledgement was lost: the stream's duplicate window (see
	// resolve.go). Zero value means 3m.
	PendingTTL time.Duration
}

// NewRedisVoters returns a registry on rdb.
func NewRedisVoters(rdb redis.UniversalClient, cfg RedisVotersConfig) (*RedisVoters, error) {
	if rdb == nil {
		return nil, errors.New("ingest: redis client is nil")
	}
	return &RedisVoters{rdb: rdb, prefix: cmp.Or(cfg.Prefix, "pollcast"), pending: cmp.Or(cfg.PendingTTL, 3*time.Minute)}, nil
}

// group returns the hash tag of k's group.
func (r *RedisVoters) group(k voterKey) string {
	return r.prefix + ":{v" + strconv.Itoa(int(k[0])%voterGroups) + "}"
}

// markers returns the marker key of every group.
func (r *RedisVoters) markers() []string {
	keys := make([]string, voterGroups)
	for g := range keys {
		keys[g] = r.prefix + ":{v" + strconv.Itoa(g) + "}:complete"
	}
	return keys
}

func (r *RedisVoters) key(k voterKey) string {
	return r.group(k) + ":voter:" + base64.RawURLEncoding.EncodeToString(k[:])
}

// claimScript: KEYS[1] the voter, KEYS[2] its group's marker (same slot),
// ARGV[1] vote id, ARGV[2] pending TTL in ms. Returns 0 claimed, 1 stored,
// 2 taken, 3 lost.
var claimScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[2]) == 0 then return 3 end
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], 'p:' .. ARGV[1], 'PX', ARGV[2])
  return 0
end
if string.sub(v, 3) ~= ARGV[1] then return 2 end
if string.sub(v, 1, 1) == 'c' then return 1 end
return 0
`)

// releaseScript deletes a claim only while it is this vote's and pending.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == 'p:' .. ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// recordScript stores "c:<id>" unless a stored vote is already there.
var recordScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, 1) == 'c' then return 0 end
redis.call('SET', KEYS[1], 'c:' .. ARGV[1])
return 1
`)

// Claim implements Voters.
func (r *RedisVoters) Claim(ctx context.Context, k voterKey, id voteID) (claimResult, error) {
	keys := []string{r.key(k), r.group(k) + ":complete"}
	n, err := claimScript.Run(ctx, r.rdb, keys, id.String(), r.pending.Milliseconds()).Int()
	if err != nil {
		return 0, fmt.Errorf("ingest: redis claim: %w", err)
	}
	return claimResult(n), nil
}

// Finish implements Voters.
func (r *RedisVoters) Finish(ctx context.Context, k voterKey, id voteID, stored bool) error {
	var err error
	if stored {
		err = r.rdb.Set(ctx, r.key(k), "c:"+id.String(), 0).Err()
	} else {
		err = releaseScript.Run(ctx, r.rdb, []string{r.key(k)}, id.String()).Err()
	}
	if err != nil {
		return fmt.Errorf("ingest: redis finish claim: %w", err)
	}
	return nil
}

// Record implements Voters.
func (r *RedisVoters) Record(ctx context.Context, k voterKey, id voteID) error {
	if err := recordScript.Run(ctx, r.rdb, []string{r.key(k)}, id.String()).Err(); err != nil {
		return fmt.Errorf("ingest: redis record voter: %w", err)
	}
	return nil
}

// RecordMany implements Voters: one pipeline, one round trip (or one per
// Cluster node).
func (r *RedisVoters) RecordMany(ctx context.Context, vs []voterVote) error {
	if len(vs) == 0 {
		return nil
	}
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, x := range vs {
			recordScript.Eval(ctx, p, []string{r.key(x.key)}, x.id.String()) // EVAL: a pipeline cannot fall back from a script the server lost
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("ingest: redis record voters: %w", err)
	}
	return nil
}

// Voted implements Voters.
func (r *RedisVoters) Voted(ctx context.Context, k voterKey) (bool, error) {
	v, err := r.rdb.Get(ctx, r.key(k)).Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("ingest: redis voted: %w", err)
	}
	return len(v) > 2 && v[0] == 'c', nil
}

// Forget implements Voters: one pipeline of DELs, the keys of a Cluster
// being in many slots.
func (r *RedisVoters) Forget(ctx context.Context, ks []voterKey) error {
	if len(ks) == 0 {
		return nil
	}
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range ks {
			p.Del(ctx, r.key(k))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("ingest: redis forget voters: %w", err)
	}
	return nil
}

// Durable implements Voters.
func (r *RedisVoters) Durable() bool { return true }

// Complete implements Voters: every group's marker is there.
func (r *RedisVoters) Complete(ctx context.Context) (bool, error) {
	cmds, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range r.markers() {
			p.Exists(ctx, k) // one key a command: the markers live in different slots
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("ingest: redis voters markers: %w", err)
	}
	for _, c := range cmds {
		if c.(*redis.IntCmd).Val() != 1 {
			return false, nil
		}
	}
	return true, nil
}

// MarkComplete implements Voters.
func (r *RedisVoters) MarkComplete(ctx context.Context) error {
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range r.markers() {
			p.Set(ctx, k, "1", 0)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("ingest: redis voters markers: %w", err)
	}
	return nil
}
