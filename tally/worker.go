package tally

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pollcast/pollcast/internal/retry"
	"github.com/pollcast/pollcast/votelog"
)

// runShard follows one shard until ctx ends, starting over from the
// store's watermark after a fence or an error; with leases, only while it
// holds the shard's lease. A fence restarts it at once and with the
// shortest delay before the next error's retry: another worker moved the
// shard on, nothing is broken.
func (t *Tally) runShard(ctx context.Context, shard int) {
	restarting := func(err error, wait time.Duration) {
		t.log.Warn("tally: shard worker restarting", "shard", shard, "err", err, "in", wait)
	}
	for ctx.Err() == nil {
		err := retry.Do(ctx, retry.Backoff{Min: 50 * time.Millisecond, Max: 5 * time.Second}, func(ctx context.Context) error {
			err := t.followShard(ctx, shard)
			if errors.Is(err, ErrFenced) {
				return retry.Permanent(err)
			}
			return err
		}, restarting)
		if errors.Is(err, ErrFenced) && ctx.Err() == nil {
			t.log.Warn("tally: shard fenced off; reloading its watermark", "shard", shard)
		}
	}
}

// followShard follows the shard, under its lease when there are leases.
func (t *Tally) followShard(ctx context.Context, shard int) error {
	if t.cfg.Leases != nil {
		return t.followLeased(ctx, shard)
	}
	return t.follow(ctx, shard)
}

// followLeased waits for the shard's lease, then follows the shard while
// renewing it; it returns when the lease is lost or ctx ends.
func (t *Tally) followLeased(ctx context.Context, shard int) error {
	key := "shard-" + strconv.Itoa(shard)
	owner := []byte(t.cfg.Owner)
	tick := time.NewTicker(t.cfg.LeaseRenew)
	defer tick.Stop()
	rev, err := t.takeLease(ctx, key, owner, tick.C)
	if err != nil {
		return err
	}
	t.log.Info("tally: took the lease of a shard", "shard", shard, "owner", t.cfg.Owner)
	lctx, lost := context.WithCancel(ctx)
	defer lost()
	var renewer sync.WaitGroup
	renewer.Go(func() {
		defer lost()
		rev = t.renewLease(lctx, shard, key, owner, rev, tick.C)
	})
	err = t.follow(lctx, shard)
	lost()
	renewer.Wait()
	// Hand the shard over at once rather than after the TTL.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	_ = t.cfg.Leases.Delete(dctx, key, jetstream.LastRevision(rev))
	cancel()
	if ctx.Err() == nil && lctx.Err() != nil {
		return errors.New("tally: lease lost")
	}
	return err
}

// takeLease tries to create the lease key at every tick until it does, and
// returns its revision; it fails only when ctx ends.
func (t *Tally) takeLease(ctx context.Context, key string, owner []byte, tick <-chan time.Time) (rev uint64, err error) {
	for {
		if rev, err = t.cfg.Leases.Create(ctx, key, owner); err == nil {
			return rev, nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-tick:
		}
	}
}

// renewLease renews the lease key, held at revision rev, at every tick
// until ctx ends or a renewal fails (the lease is lost), and returns the
// last revision it held.
func (t *Tally) renewLease(ctx context.Context, shard int, key string, owner []byte, rev uint64, tick <-chan time.Time) uint64 {
	for {
		select {
		case <-ctx.Done():
			return rev
		case <-tick:
		}
		r, err := t.cfg.Leases.Update(ctx, key, owner, rev)
		if err != nil {
			if ctx.Err() == nil {
				t.log.Warn("tally: lost the lease of a shard", "shard", shard, "err", err)
			}
			return rev
		}
		rev = r
	}
}

// followFrom reads the shard from its watermark on and applies batches
// until ctx ends or something fails (ErrFenced when another worker moved
// the watermark). It publishes the counts of a batch's polls as soon as
// the batch is applied. A watermark past the end of the log is reset
// first (behind.go).
func (t *Tally) followFrom(ctx context.Context, shard int) error {
	mark, err := t.store.Watermark(ctx, shard)
	if err != nil {
		return fmt.Errorf("tally: watermark: %w", err)
	}
	marks := []uint64{mark}
	if err := t.rebuildAhead(ctx, shard, marks); err != nil {
		return err
	}
	mark = marks[0]
	if err := t.checkTrimmed(ctx, shard, mark); err != nil {
		return err
	}
	st := t.shards[shard]
	st.applied.Store(mark)
	in, stop, err := t.consume(ctx, mark, votelog.ShardFilter(shard), t.cfg.BatchSize)
	if err != nil {
		return err
	}
	defer stop()

	b := newBatcher(shard, t.log, t.cat.Deleted)
	b.reset(mark)
	touched := newTouched()
	var got []jetstream.Msg
	for {
		if got = in.take(ctx, got, 0); got == nil {
			return ctx.Err()
		}
		var pending uint64
		for _, m := range got {
			seq, left, err := position(m)
			if err != nil {
				t.log.Error("tally: message without metadata", "shard", shard, "err", err)
				continue
			}
			pending = left
			b.add(seq, m.Data())
		}
		if b.empty() {
			continue // only redeliveries at or below the watermark
		}
		if _, err := t.commit(ctx, b, touched); err != nil {
			return err
		}
		st.pending.Store(pending)
		touched.publish(ctx, t, true)
	}
}
