package tally

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pollcast/pollcast/votelog"
)

// With retention (votelog.Retain), the log loses its oldest votes once
// every fold saved them. A shard whose watermark is zero would rebuild
// from the start of the log: once retention removed anything, that start
// is gone, and the shard refuses (ErrLogTrimmed) rather than count only
// what is left. So that a shard that has simply had no vote yet is not
// taken for one that lost its counters, SettleIdle moves the watermark of
// such shards past the votes of other shards before anything is removed.

// ErrLogTrimmed is returned when a shard would rebuild from the start of a
// log whose beginning retention removed: the store lost counters the log
// can no longer give back.
var ErrLogTrimmed = errors.New("tally: the store has no counters for this shard and the log no longer holds its first votes (--log-retention removed them): restore the store (Redis from its AOF, or a snapshot) to count them")

// checkTrimmed returns ErrLogTrimmed when a shard at watermark mark would
// need votes retention removed.
func (t *Tally) checkTrimmed(ctx context.Context, shard int, mark uint64) error {
	if mark != 0 {
		return nil
	}
	purged, err := votelog.PurgedBelow(ctx, t.js)
	if err != nil {
		return err
	}
	if purged > 1 {
		t.refusing.Store(true)
		return fmt.Errorf("shard %d: %w", shard, ErrLogTrimmed)
	}
	return nil
}

// Ready returns ErrLogTrimmed while a shard refuses to rebuild from a
// trimmed log, for readiness.
func (t *Tally) Ready(context.Context) error {
	if t.refusing.Load() {
		return ErrLogTrimmed
	}
	return nil
}

// SettleIdle moves the watermark of every shard still at zero to just
// before its first vote in the log (to the log's end when it has none), so
// that a zero watermark always means "nothing applied from a log that
// holds its beginning". It goes through Apply with fencing: a worker that
// applied meanwhile wins, and a worker overtaken reloads the watermark.
func (t *Tally) SettleIdle(ctx context.Context) error {
	stream, err := t.js.Stream(ctx, votelog.StreamName)
	if err != nil {
		return fmt.Errorf("tally: stream: %w", err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("tally: stream info: %w", err)
	}
	end := info.State.LastSeq // read first: a vote after it was not there
	for shard := range t.shards {
		mark, err := t.store.Watermark(ctx, shard)
		if err != nil {
			return fmt.Errorf("tally: watermark: %w", err)
		}
		if mark != 0 {
			continue
		}
		to := end
		m, err := stream.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(votelog.ShardFilter(shard)))
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
		case err != nil:
			return fmt.Errorf("tally: first vote of shard %d: %w", shard, err)
		default:
			to = min(to, m.Sequence-1)
		}
		if to == 0 {
			continue
		}
		err = t.store.Apply(ctx, Batch{Shard: shard, Prev: 0, Last: to})
		switch {
		case errors.Is(err, ErrFenced):
		case err != nil:
			return fmt.Errorf("tally: settle shard %d: %w", shard, err)
		default:
			st := t.shards[shard]
			if st.applied.Load() < to {
				st.applied.Store(to)
			}
		}
	}
	return nil
}

// Need returns the lowest log sequence the shards still need, as their
// stored watermarks say (a floor for votelog.Retain with a durable store),
// after settling idle shards.
func (t *Tally) Need(ctx context.Context) (uint64, error) {
	if err := t.SettleIdle(ctx); err != nil {
		return 0, err
	}
	marks, err := t.watermarks(ctx)
	if err != nil {
		return 0, err
	}
	return votelog.ShardsNeed(ctx, t.js, marks)
}
