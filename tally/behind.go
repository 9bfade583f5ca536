package tally

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/pollcast/pollcast/votelog"
)

// A watermark past the end of the log means the log lost its tail: it was
// restored from an older backup, or it is a new log beside a store that
// folded an old one. New votes would come at sequences the shard has
// applied up to, and be skipped: never counted. Such a shard is reset
// (Store.ResetShard) and folded again from the start of the log. The tally
// checks at start (catch-up and every shard worker's start) and, while it
// runs, every Config.LogCheck (watchLog).
//
// A watermark is compared with an end read after it: a vote applied is in
// the log, so a log that did not lose its tail always ends at or past it.

// errLogBehind cancels a shard worker whose shard was reset: it starts
// over from the store's watermark.
var errLogBehind = errors.New("tally: the log is behind the shard's watermark")

// following is the cancel function of a shard worker's current read, for
// watchLog to restart it.
type following struct {
	mu     sync.Mutex
	cancel context.CancelCauseFunc // nil while the shard is not being read
}

func (f *following) set(cancel context.CancelCauseFunc) {
	f.mu.Lock()
	f.cancel = cancel
	f.mu.Unlock()
}

// restart ends the current read, if any, and reports whether there was one.
func (f *following) restart() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cancel == nil {
		return false
	}
	f.cancel(errLogBehind)
	return true
}

func (f *following) active() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cancel != nil
}

// follow follows the shard (followFrom), starting over from the store's
// watermark whenever watchLog finds the shard ahead of the log.
func (t *Tally) follow(ctx context.Context, shard int) error {
	st := t.shards[shard]
	for {
		fctx, cancel := context.WithCancelCause(ctx)
		st.following.set(cancel)
		err := t.followFrom(fctx, shard)
		st.following.set(nil)
		cancel(nil)
		if ctx.Err() != nil || !errors.Is(context.Cause(fctx), errLogBehind) {
			return err
		}
	}
}

// rebuildAhead resets every shard whose watermark in marks (that of shard
// first+i at i) is past the end of the log, read now, and sets its mark to
// what the store then holds.
func (t *Tally) rebuildAhead(ctx context.Context, first int, marks []uint64) error {
	end, err := votelog.LastSeq(ctx, t.js)
	if err != nil {
		return fmt.Errorf("tally: the log's end: %w", err)
	}
	for i, mark := range marks {
		if mark <= end {
			continue
		}
		shard := first + i
		if err := t.resetShard(ctx, shard, mark, end); err != nil {
			return err
		}
		if marks[i], err = t.store.Watermark(ctx, shard); err != nil {
			return fmt.Errorf("tally: watermark: %w", err)
		}
	}
	return nil
}

// resetShard resets shard, found at watermark mark past end (the log's
// last sequence), and says so.
func (t *Tally) resetShard(ctx context.Context, shard int, mark, end uint64) error {
	reset, err := t.store.ResetShard(ctx, shard, end)
	if err != nil {
		return fmt.Errorf("tally: reset shard %d: %w", shard, err)
	}
	if reset {
		t.log.Warn("tally: the shard's watermark is past the end of the log, which lost its tail (restored from an older backup, or a new log beside an old store): rebuilding the shard from the start of the log",
			"shard", shard, "watermark", mark, "log_last_seq", end)
	}
	return nil
}

// watchLog compares the watermark of every shard being read with the end
// of the log every Config.LogCheck, resets the shards past it and restarts
// their workers, until ctx ends.
func (t *Tally) watchLog(ctx context.Context) {
	tick := time.NewTicker(t.cfg.LogCheck)
	defer tick.Stop()
	applied := make([]uint64, len(t.shards))
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for shard, st := range t.shards {
			applied[shard] = st.applied.Load()
		}
		end, err := votelog.LastSeq(ctx, t.js)
		if err != nil {
			continue // the log is away: the workers say so
		}
		for shard, mark := range applied {
			st := t.shards[shard]
			if mark <= end || !st.following.active() {
				continue
			}
			if err := t.resetShard(ctx, shard, mark, end); err != nil {
				if ctx.Err() == nil {
					t.log.Warn("tally: reset of a shard ahead of the log failed; trying again", "shard", shard, "err", err)
				}
				continue
			}
			st.following.restart()
		}
	}
}
