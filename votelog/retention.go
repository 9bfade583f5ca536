package votelog

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Retention: votes older than a maximum age leave the log, but only up to
// the lowest sequence that some fold of the log (the tally, the voter
// registry, the analytics sink) has not durably saved yet. Each fold says
// what it still needs through a Floor; Retain removes what is older than
// the age and below every floor, with a purge of the stream below a
// sequence, and records that sequence first (PurgedBelow), so that a fold
// that finds itself without its saved state refuses to rebuild from a log
// missing its beginning instead of counting it wrong.

const (
	// RetentionBucket is the key-value bucket recording what retention
	// removed from the log.
	RetentionBucket = "pollcast_retention"
	purgedKey       = "purged_below"
)

// Floor is what one fold of the log still needs.
type Floor struct {
	// Name names the fold in log messages.
	Name string
	// Need returns the lowest stream sequence the fold still needs: the
	// log must keep it and everything after it. An error skips the round.
	Need func(ctx context.Context) (uint64, error)
}

// RetentionConfig configures Retain.
type RetentionConfig struct {
	// MaxAge is the age past which votes leave the log. It must be set.
	MaxAge time.Duration
	// Interval is how often the log is trimmed. Zero value means 1m.
	Interval time.Duration
	// Floors are the folds whose needs bound what is removed. Zero value
	// means none: votes leave at MaxAge whatever reads them.
	Floors []Floor
	// Replicas is the replica count of RetentionBucket. Zero value means 1.
	Replicas int
	// Logger receives what was removed and why not. Zero value means slog.Default().
	Logger *slog.Logger
}

// Retain trims the log every Interval until ctx ends (see TrimOnce).
func Retain(ctx context.Context, js jetstream.JetStream, cfg RetentionConfig) {
	cfg.Interval = cmp.Or(cfg.Interval, time.Minute)
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	t := time.NewTicker(cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := TrimOnce(ctx, js, cfg); err != nil && ctx.Err() == nil {
			cfg.Logger.Warn("votelog: retention: the log was not trimmed", "err", err)
		}
	}
}

// TrimOnce removes from the log the votes older than cfg.MaxAge that are
// below every floor, and returns the log's first sequence after it.
func TrimOnce(ctx context.Context, js jetstream.JetStream, cfg RetentionConfig) (uint64, error) {
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	if cfg.MaxAge <= 0 {
		return 0, errors.New("votelog: retention: no maximum age")
	}
	s, err := js.Stream(ctx, StreamName)
	if err != nil {
		return 0, fmt.Errorf("votelog: retention: %w", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("votelog: retention: %w", err)
	}
	first, last := info.State.FirstSeq, info.State.LastSeq
	if info.State.Msgs == 0 {
		return first, nil
	}
	keep, err := firstSince(ctx, s, first, last, time.Now().Add(-cfg.MaxAge))
	if err != nil {
		return 0, err
	}
	by := "age"
	for _, f := range cfg.Floors {
		need, err := f.Need(ctx)
		if err != nil {
			return 0, fmt.Errorf("votelog: retention: what %s needs: %w", f.Name, err)
		}
		if need < keep {
			keep, by = need, f.Name
		}
	}
	if keep <= first {
		return first, nil
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: RetentionBucket, Replicas: cmp.Or(cfg.Replicas, 1),
		Description: "what retention removed from the vote log",
	})
	if err != nil {
		return 0, fmt.Errorf("votelog: retention: %w", err)
	}
	// Recorded before the purge: a fold never finds the log trimmed
	// without knowing it.
	if _, err := kv.Put(ctx, purgedKey, []byte(strconv.FormatUint(keep, 10))); err != nil {
		return 0, fmt.Errorf("votelog: retention: %w", err)
	}
	if err := s.Purge(ctx, jetstream.WithPurgeSequence(keep)); err != nil {
		return 0, fmt.Errorf("votelog: retention: purge: %w", err)
	}
	cfg.Logger.Info("votelog: retention: old votes left the log", "below", keep, "bound by", by)
	return keep, nil
}

// firstSince returns the lowest sequence s such that every message of the
// log from s on was stored at or after since (last+1 when none was),
// searching between first and last: the log may lose what is below it.
func firstSince(ctx context.Context, s jetstream.Stream, first, last uint64, since time.Time) (uint64, error) {
	lo, hi := first, last+1
	for lo < hi {
		mid := lo + (hi-lo)/2
		m, err := s.GetMsg(ctx, mid, jetstream.WithGetMsgSubject(AllVotes)) // the first message at mid or after
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
			hi = mid
		case err != nil:
			return 0, fmt.Errorf("votelog: retention: %w", err)
		case m.Time.Before(since):
			lo = m.Sequence + 1 // m is old, and so is everything before it
		default:
			hi = mid
		}
	}
	return lo, nil
}

// PurgedBelow returns the sequence below which retention removed every
// vote from the log: 0 when it never did.
func PurgedBelow(ctx context.Context, js jetstream.JetStream) (uint64, error) {
	kv, err := js.KeyValue(ctx, RetentionBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("votelog: retention: %w", err)
	}
	e, err := kv.Get(ctx, purgedKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("votelog: retention: %w", err)
	}
	n, err := strconv.ParseUint(string(e.Value()), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("votelog: retention: %s: %w", purgedKey, err)
	}
	return n, nil
}

// ShardsNeed returns the lowest sequence that shards standing at the
// watermarks marks (indexed by shard) need: for each, its first vote after
// its watermark, or the log's end when it has none.
func ShardsNeed(ctx context.Context, js jetstream.JetStream, marks []uint64) (uint64, error) {
	s, err := js.Stream(ctx, StreamName)
	if err != nil {
		return 0, fmt.Errorf("votelog: stream: %w", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("votelog: stream info: %w", err)
	}
	need := info.State.LastSeq + 1 // read first: a vote after it was not there
	for shard, mark := range marks {
		if mark+1 >= need {
			continue
		}
		m, err := s.GetMsg(ctx, mark+1, jetstream.WithGetMsgSubject(ShardFilter(shard)))
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
		case err != nil:
			return 0, fmt.Errorf("votelog: next vote of shard %d: %w", shard, err)
		default:
			need = min(need, m.Sequence)
		}
	}
	return need, nil
}
