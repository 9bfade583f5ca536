package votelog

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

const (
	// StreamName is the JetStream stream holding every vote: the log.
	StreamName = "VOTES"
	// DefaultShards is the number of tally shards when none is configured.
	DefaultShards = 16
	// DefaultDuplicateWindow is how long the stream remembers message IDs
	// (vote IDs derived from idempotency keys): a retry within it is
	// recognised by JetStream itself.
	DefaultDuplicateWindow = 2 * time.Minute
)

// VoteSubject returns the subject a vote for poll is published on.
func VoteSubject(shard int, pollID string) string {
	return "votes." + strconv.Itoa(shard) + "." + pollID
}

// ShardFilter returns the subject filter of every vote of one shard.
func ShardFilter(shard int) string {
	return "votes." + strconv.Itoa(shard) + ".>"
}

// ResultsSubject returns the core NATS subject the new counts of a poll are
// published on after each change.
func ResultsSubject(pollID string) string {
	return "results." + pollID
}

// Shard returns the shard of a poll among n: all votes of a poll go to one
// shard, so one ordered reader folds them.
func Shard(pollID string, n int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(pollID))
	return int(h.Sum32() % uint32(n))
}

// StreamConfig configures EnsureStream.
type StreamConfig struct {
	// Replicas is the stream's replica count. Zero value means 1; use 3 on a cluster.
	Replicas int
	// DuplicateWindow is how long vote IDs are remembered for deduplication.
	// Zero value means DefaultDuplicateWindow.
	DuplicateWindow time.Duration
	// MaxBytes caps the size of the log; when full, publishes fail (votes get
	// 503) rather than old votes being dropped. Zero value means unlimited.
	MaxBytes int64
	// Shards is the tally shard count: recorded in the stream at its first
	// start, and checked against the recorded count at every start after
	// (*ShardsChangedError). Zero value means neither.
	Shards int
}

// EnsureStream creates the VOTES stream or brings its configuration up to date.
func EnsureStream(ctx context.Context, js jetstream.JetStream, cfg StreamConfig) (jetstream.Stream, error) {
	meta, err := streamMetadata(ctx, js, cfg.Shards)
	if err != nil {
		return nil, err
	}
	sc := jetstream.StreamConfig{
		Name:        StreamName,
		Description: "pollcast vote log: the source of truth",
		Subjects:    []string{AllVotes},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardNew,
		Storage:     jetstream.FileStorage,
		Replicas:    cmp.Or(cfg.Replicas, 1),
		Duplicates:  cmp.Or(cfg.DuplicateWindow, DefaultDuplicateWindow),
		MaxBytes:    cmp.Or(cfg.MaxBytes, -1),
		MaxMsgs:     -1,
		MaxAge:      0,
		// Direct gets let the tally's rebuild at start read the log in
		// batches without a consumer (tally's catchUpDirect).
		AllowDirect: true,
		Metadata:    meta,
	}
	s, err := js.CreateOrUpdateStream(ctx, sc)
	if err != nil {
		return nil, fmt.Errorf("votelog: ensure stream: %w", err)
	}
	return s, nil
}

// LastSeq returns the sequence of the newest vote in the log, 0 if empty.
func LastSeq(ctx context.Context, js jetstream.JetStream) (uint64, error) {
	s, err := js.Stream(ctx, StreamName)
	if err != nil {
		return 0, fmt.Errorf("votelog: stream: %w", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("votelog: stream info: %w", err)
	}
	return info.State.LastSeq, nil
}

// ErrLogUnavailable is returned when the log cannot be reached.
var ErrLogUnavailable = errors.New("votelog: log unavailable")

// AllVotes is the subject filter of every vote in the log.
const AllVotes = "votes.>"

// Reader opens an ordered consumer of the log that delivers the messages
// after sequence after (from the start when after is 0) on filter
// (AllVotes, or ShardFilter of one shard). It is the one way the roles read
// the log through a consumer: ordered, ephemeral, no acks, recreated by the
// client after a gap, so a reader sees each message once and in order.
func Reader(ctx context.Context, js jetstream.JetStream, after uint64, filter string) (jetstream.Consumer, error) {
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}, DeliverPolicy: jetstream.DeliverAllPolicy}
	if after > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, after+1
	}
	c, err := js.OrderedConsumer(ctx, StreamName, cfg)
	if err != nil {
		return nil, fmt.Errorf("votelog: reader: %w", err)
	}
	return c, nil
}

const (
	// LeaseBucket is the key-value bucket in which tally processes sharing
	// a store take turns on shards: key = shard number, value = owner.
	LeaseBucket = "pollcast_tally_leases"
	// DefaultLeaseTTL is how long a lease outlives its holder's last
	// renewal: the time another process waits to take over a dead holder's shard.
	DefaultLeaseTTL = 3 * time.Second
)

// LeaseConfig configures EnsureLeases.
type LeaseConfig struct {
	// Replicas is the bucket's replica count. Zero value means 1; use 3 on a cluster.
	Replicas int
	// TTL is how long a lease lasts without renewal. Zero value means DefaultLeaseTTL.
	TTL time.Duration
}

// EnsureLeases creates the tally lease bucket or brings its configuration up to date.
func EnsureLeases(ctx context.Context, js jetstream.JetStream, cfg LeaseConfig) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: LeaseBucket, TTL: cmp.Or(cfg.TTL, DefaultLeaseTTL), Replicas: cmp.Or(cfg.Replicas, 1),
		Description: "which tally process folds which shard",
	})
	if err != nil {
		return nil, fmt.Errorf("votelog: lease bucket: %w", err)
	}
	return kv, nil
}

// ParseVoteSubject returns the shard and the poll of a subject made by
// VoteSubject: a reader of the whole log routes a message by it without
// decoding the vote. ok is false for any other subject.
func ParseVoteSubject(subject string) (shard int, pollID string, ok bool) {
	const prefix = "votes."
	if len(subject) < len(prefix) || subject[:len(prefix)] != prefix {
		return 0, "", false
	}
	rest := subject[len(prefix):]
	for i := range len(rest) {
		if rest[i] != '.' {
			continue
		}
		n, err := strconv.Atoi(rest[:i])
		if err != nil || n < 0 {
			return 0, "", false
		}
		return n, rest[i+1:], true
	}
	return 0, "", false
}
