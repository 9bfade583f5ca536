package tally

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pollcast/pollcast/poll"
	"github.com/pollcast/pollcast/votelog"
)

// RedisConfig configures NewRedisStore.
type RedisConfig struct {
	// Prefix starts every key. Zero value means "pollcast".
	Prefix string
	// Shards must match the tally's and ingest's: a poll's keys live with
	// its shard. Zero value means votelog.DefaultShards.
	Shards int
}

// RedisStore keeps counters in Redis (a single server or a Redis Cluster):
// choose it when several tally processes share the shards, or when a
// restart must resume where it stopped instead of replaying the log. Every
// key of a shard carries the shard's hash tag, so one Lua script applies a
// batch — counters, voters and the watermark — atomically in one slot.
type RedisStore struct {
	rdb    redis.UniversalClient
	prefix string
	shards int
}

var _ Store = (*RedisStore)(nil)

// NewRedisStore returns a store on rdb.
func NewRedisStore(rdb redis.UniversalClient, cfg RedisConfig) (*RedisStore, error) {
	if rdb == nil {
		return nil, errors.New("tally: redis client is nil")
	}
	cfg.Prefix = cmp.Or(cfg.Prefix, "pollcast")
	cfg.Shards = cmp.Or(cfg.Shards, votelog.DefaultShards)
	if strings.ContainsAny(cfg.Prefix, "{}") {
		return nil, errors.New("tally: redis prefix must not contain braces")
	}
	return &RedisStore{rdb: rdb, prefix: cfg.Prefix, shards: cfg.Shards}, nil
}

// Key layout, with {sN} the hash tag of shard N:
//
//	<prefix>:{sN}:wm            the shard's watermark
//	<prefix>:{sN}:polls         set of the shard's poll IDs (to clear on rebuild)
//	<prefix>:{sN}:c:<poll>      hash: total, anon, version, at (unix ms), o:<option>
//	<prefix>:{sN}:v:<poll>      set of voter keys
//	<prefix>:{sN}:gone          set of the shard's deleted poll IDs: never counted again
func (s *RedisStore) shardKey(shard int) string {
	return s.prefix + ":{s" + strconv.Itoa(shard) + "}:"
}

// applyScript applies one batch of a shard, or nothing.
//
// KEYS[1] watermark, KEYS[2] poll registry, KEYS[3] deleted polls, then
// per poll its counters hash and voters set. ARGV[1] prev, ARGV[2] last,
// ARGV[3] key prefix of the shard, ARGV[4] poll count, then per poll: id,
// total, anon, at, option count, option/votes pairs, voter count, voters.
// The votes of a deleted poll only move the watermark: a batch read before
// the poll was deleted must not bring its counters back.
//
// Lua does not roll back: every argument is checked before the first write.
var applyScript = redis.NewScript(`
local wmRaw = redis.call('GET', KEYS[1])
local wm = tonumber(wmRaw or '0')
if wm ~= tonumber(ARGV[1]) then
  return redis.error_reply('FENCED watermark ' .. tostring(wm))
end
local last = tonumber(ARGV[2])
local npolls = tonumber(ARGV[4])
if last == nil or npolls == nil or #KEYS ~= 3 + 2 * npolls then
  return redis.error_reply('BADBATCH header')
end
local i = 5
for p = 1, npolls do
  if ARGV[i] == nil or tonumber(ARGV[i+1]) == nil or tonumber(ARGV[i+2]) == nil or tonumber(ARGV[i+3]) == nil then
    return redis.error_reply('BADBATCH poll')
  end
  local nopts = tonumber(ARGV[i+4])
  if nopts == nil then return redis.error_reply('BADBATCH options') end
  i = i + 5
  for o = 1, nopts do
    if ARGV[i] == nil or tonumber(ARGV[i+1]) == nil then return redis.error_reply('BADBATCH option') end
    i = i + 2
  end
  local nvoters = tonumber(ARGV[i])
  if nvoters == nil then return redis.error_reply('BADBATCH voters') end
  i = i + 1 + nvoters
end
if i ~= #ARGV + 1 then
  return redis.error_reply('BADBATCH length')
end

-- A missing watermark means this shard is rebuilt from the start of the
-- log: forget whatever counters survived without it.
if wmRaw == false then
  for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do
    redis.call('DEL', ARGV[3] .. 'c:' .. id, ARGV[3] .. 'v:' .. id)
  end
  redis.call('DEL', KEYS[2])
end

i = 5
for p = 1, npolls do
  local h, v = KEYS[2 + 2 * p], KEYS[3 + 2 * p]
  local id, total, anon, at = ARGV[i], tonumber(ARGV[i+1]), tonumber(ARGV[i+2]), tonumber(ARGV[i+3])
  local nopts = tonumber(ARGV[i+4])
  local gone = redis.call('SISMEMBER', KEYS[3], id) == 1
  if not gone then
    redis.call('SADD', KEYS[2], id)
    redis.call('HINCRBY', h, 'total', total)
    redis.call('HINCRBY', h, 'anon', anon)
    redis.call('HINCRBY', h, 'version', total)
    if at > tonumber(redis.call('HGET', h, 'at') or '0') then
      redis.call('HSET', h, 'at', at)
    end
  end
  i = i + 5
  for o = 1, nopts do
    if not gone then
      redis.call('HINCRBY', h, 'o:' .. ARGV[i], tonumber(ARGV[i+1]))
    end
    i = i + 2
  end
  local nvoters = tonumber(ARGV[i])
  i = i + 1
  local j = 0
  while j < nvoters and not gone do
    local n = math.min(1000, nvoters - j)
    redis.call('SADD', v, unpack(ARGV, i + j, i + j + n - 1))
    j = j + n
  end
  i = i + nvoters
end
redis.call('SET', KEYS[1], ARGV[2])
return 1
`)

// HasVoter implements Store.
func (s *RedisStore) HasVoter(ctx context.Context, pollID string, voter [16]byte) (bool, error) {
	base := s.shardKey(votelog.Shard(pollID, s.shards))
	ok, err := s.rdb.SIsMember(ctx, base+"v:"+pollID, string(voter[:])).Result()
	if err != nil {
		return false, fmt.Errorf("tally: redis voter: %w", err)
	}
	return ok, nil
}

// Watermark implements Store.
func (s *RedisStore) Watermark(ctx context.Context, shard int) (uint64, error) {
	v, err := s.rdb.Get(ctx, s.shardKey(shard)+"wm").Uint64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("tally: redis watermark: %w", err)
	}
	return v, nil
}

// Apply implements Store with one Lua script call.
func (s *RedisStore) Apply(ctx context.Context, b Batch) error {
	base := s.shardKey(b.Shard)
	keys := make([]string, 0, 3+2*len(b.Polls))
	keys = append(keys, base+"wm", base+"polls", base+"gone")
	args := []any{b.Prev, b.Last, base, len(b.Polls)}
	for id, d := range b.Polls {
		keys = append(keys, base+"c:"+id, base+"v:"+id)
		args = append(args, id, d.Total, d.Anonymous, d.At.UnixMilli(), len(d.Options))
		for o, n := range d.Options {
			args = append(args, o, n)
		}
		args = append(args, len(d.Voters))
		for _, v := range d.Voters {
			args = append(args, string(v[:]))
		}
	}
	err := applyScript.Run(ctx, s.rdb, keys, args...).Err()
	if err != nil && strings.HasPrefix(err.Error(), "FENCED") {
		return ErrFenced
	}
	if err != nil {
		return fmt.Errorf("tally: redis apply: %w", err)
	}
	return nil
}

// Counts implements Store in one round trip.
func (s *RedisStore) Counts(ctx context.Context, pollID string) (poll.Counts, error) {
	base := s.shardKey(votelog.Shard(pollID, s.shards))
	var h *redis.MapStringStringCmd
	var v *redis.IntCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		h = p.HGetAll(ctx, base+"c:"+pollID)
		v = p.SCard(ctx, base+"v:"+pollID)
		return nil
	})
	c := poll.Counts{PollID: pollID, Options: map[string]int64{}}
	if err != nil {
		return c, fmt.Errorf("tally: redis counts: %w", err)
	}
	var anon int64
	for f, val := range h.Val() {
		n, _ := strconv.ParseInt(val, 10, 64)
		switch {
		case f == "total":
			c.Total = n
		case f == "anon":
			anon = n
		case f == "version":
			c.Version = n
		case f == "at":
			c.UpdatedAt = time.UnixMilli(n).UTC()
		case strings.HasPrefix(f, "o:"):
			c.Options[f[2:]] = n
		}
	}
	c.Voters = v.Val() + anon
	return c, nil
}

// DeletePoll implements Store: the poll's counters and voters go, and its
// ID joins the shard's deleted polls, whose votes Apply never counts again.
func (s *RedisStore) DeletePoll(ctx context.Context, pollID string) error {
	base := s.shardKey(votelog.Shard(pollID, s.shards))
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, base+"c:"+pollID, base+"v:"+pollID)
		p.SRem(ctx, base+"polls", pollID)
		p.SAdd(ctx, base+"gone", pollID)
		return nil
	})
	if err != nil {
		return fmt.Errorf("tally: redis delete poll: %w", err)
	}
	return nil
}

// resetScript resets a shard whose watermark is past the log's end.
//
// KEYS[1] watermark, KEYS[2] poll registry. ARGV[1] the log's last
// sequence, ARGV[2] key prefix of the shard. It returns 1 when it reset.
var resetScript = redis.NewScript(`
local last = tonumber(ARGV[1])
if last == nil then
  return redis.error_reply('BADRESET end')
end
if tonumber(redis.call('GET', KEYS[1]) or '0') <= last then
  return 0
end
for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  redis.call('DEL', ARGV[2] .. 'c:' .. id, ARGV[2] .. 'v:' .. id)
end
redis.call('DEL', KEYS[2])
redis.call('SET', KEYS[1], '0')
return 1
`)

// ResetShard implements Store with one Lua script call: the shard's keys
// share its hash tag.
func (s *RedisStore) ResetShard(ctx context.Context, shard int, end uint64) (bool, error) {
	base := s.shardKey(shard)
	n, err := resetScript.Run(ctx, s.rdb, []string{base + "wm", base + "polls"}, end, base).Int()
	if err != nil {
		return false, fmt.Errorf("tally: redis reset shard: %w", err)
	}
	return n == 1, nil
}

// Ping implements Store.
func (s *RedisStore) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("tally: redis: %w", err)
	}
	return nil
}
