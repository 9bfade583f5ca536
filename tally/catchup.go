package tally

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pollcast/pollcast/votelog"
)

const (
	// catchUpIdle ends a start-up read when the log goes quiet before the
	// sequence it aimed for (deleted messages at the end).
	catchUpIdle = 5 * time.Second
	// catchUpPull is how many messages the start-up consumer asks for at
	// once: more than a shard worker, as fewer pull requests make a rebuild
	// faster.
	catchUpPull = 16384
	// catchUpTake and catchUpLinger: a start-up read handles what has
	// arrived once it is catchUpTake messages or once the first of them
	// waited catchUpLinger. Taking what had arrived at once, a reader that
	// keeps up with the log would handle a handful of messages at a time
	// and pay for each handful what is paid once a take (a store batch per
	// shard, a lock per registry shard, waking up).
	catchUpTake   = 4096
	catchUpLinger = 5 * time.Millisecond
	// catchUpPublishEvery spaces the counts published while catching up.
	catchUpPublishEvery = 100 * time.Millisecond
)

// catchUp folds the log as it stands at start into the store with one
// reader for every shard, before the shard workers start.
//
// Why: a shard worker's filtered consumer makes the server match every
// message of the log against its filter, so N shard workers rebuilding at
// once cost N reads of the whole log; one unfiltered reader costs one, and
// routes each message to its shard's batch by subject. Batches keep their
// per-shard Prev and Last, so fencing and exactly once are unchanged.
//
// With Config.DirectRead, an empty store is read with direct gets rather
// than a consumer (see catchUpDirect), and with a consumer from wherever
// that stopped.
//
// It is only a shortcut: a shard it could not finish (fenced off by another
// worker) or anything left when it stops early is folded by the shard's
// worker, which resumes from the store's watermark as always.
func (t *Tally) catchUp(ctx context.Context) {
	start := time.Now()
	n, err := t.catchUpOnce(ctx)
	t.catchingUp.Store(0)
	switch {
	case ctx.Err() != nil:
	case err != nil:
		t.log.Warn("tally: start-up catch-up stopped; the shard workers go on from the stored watermarks", "err", err)
	case n > 0:
		t.log.Info("tally: caught up with the log", "votes", n, "took", time.Since(start).Round(time.Millisecond))
	}
}

// catchUpOnce folds the log up to its last sequence at start and returns
// the votes counted: with direct gets when Config.DirectRead allows it and
// every shard is at zero, then with a consumer for whatever is left.
func (t *Tally) catchUpOnce(ctx context.Context) (counted int, err error) {
	stream, err := t.js.Stream(ctx, votelog.StreamName)
	if err != nil {
		return 0, fmt.Errorf("tally: stream: %w", err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("tally: stream info: %w", err)
	}
	end := info.State.LastSeq
	marks, err := t.watermarks(ctx)
	if err != nil {
		return 0, err
	}
	if err := t.rebuildAhead(ctx, 0, marks); err != nil {
		return 0, err
	}
	for shard, mark := range marks {
		t.shards[shard].applied.Store(mark)
		if err := t.checkTrimmed(ctx, shard, mark); err != nil {
			return 0, err
		}
	}
	if slices.Min(marks) >= end {
		return 0, nil
	}
	if t.cfg.DirectRead && slices.Max(marks) == 0 && info.Config.AllowDirect {
		n, mark, err := t.catchUpDirect(ctx, end)
		counted += n
		switch {
		case err == nil:
			return counted, nil
		case ctx.Err() != nil:
			return counted, ctx.Err()
		}
		t.log.Warn("tally: direct read of the log stopped; reading the rest with a consumer", "at", mark, "err", err)
		if marks, err = t.watermarks(ctx); err != nil {
			return counted, err
		}
		if slices.Min(marks) >= end {
			return counted, nil
		}
	}
	n, err := t.catchUpConsumer(ctx, end, marks)
	return counted + n, err
}

// watermarks returns the stored watermark of every shard.
func (t *Tally) watermarks(ctx context.Context) ([]uint64, error) {
	marks := make([]uint64, len(t.shards))
	for shard := range marks {
		var err error
		if marks[shard], err = t.store.Watermark(ctx, shard); err != nil {
			return nil, fmt.Errorf("tally: watermark: %w", err)
		}
	}
	return marks, nil
}

// catchUpRead is what a start-up read of the log carries from take to
// take, whichever way it reads: a batcher per shard, the records kept for
// Config.Observe, the polls to publish and the votes counted.
type catchUpRead struct {
	t       *Tally
	end     uint64                                // the log's last sequence when the catch-up began
	bs      []*batcher                            // by shard; nil for a shard left to its worker
	observe func([]*votelog.Record, uint64) error // Config.Observe, or nil
	kept    keptRecords                           // the records read since the last observe
	keep    func(*votelog.Record)                 // kept.keep; nil without observe
	touched *touchedPolls
	counted int
	dec     votelog.Decoder // decodes what no batcher does
	one     votelog.Record  // each vote is decoded into it
}

// newCatchUpRead starts a read of the log after sequence from, each shard
// at its watermark in marks. Observe sees the whole log or nothing, so
// that Observed means "up to here": a read that does not start where the
// observed records stop leaves it out.
func (t *Tally) newCatchUpRead(end, from uint64, marks []uint64) *catchUpRead {
	r := &catchUpRead{t: t, end: end, bs: make([]*batcher, len(marks)), touched: newTouched()}
	for shard, mark := range marks {
		r.bs[shard] = newBatcher(shard, t.log, t.cat.Deleted)
		r.bs[shard].reset(mark)
	}
	if t.cfg.Observe != nil && from == t.observed.Load() {
		r.observe = t.cfg.Observe
		r.keep = func(rec *votelog.Record) { r.kept.keep(rec) }
	}
	return r
}

// observed hands the records kept since the last time to Config.Observe:
// the log up to sequence seq is read, more messages follow it.
func (r *catchUpRead) observed(seq, more uint64) error {
	if r.observe == nil || seq <= r.t.observed.Load() {
		return nil
	}
	if err := r.observe(r.kept.kept(), more); err != nil {
		return fmt.Errorf("tally: observe: %w", err)
	}
	r.t.observed.Store(seq)
	r.kept.reset()
	return nil
}

// consumerCatchUp reads the log with one unfiltered ordered consumer and
// routes each message to its shard's batcher by subject.
type consumerCatchUp struct {
	*catchUpRead
	seq     uint64 // the last message read
	pending uint64 // the messages after it, as the consumer last said
}

// catchUpConsumer folds the log from the lowest of marks (the shards'
// watermarks) up to end at least with a consumer, when enough shards are
// behind for one reader of the whole log to be worth it.
func (t *Tally) catchUpConsumer(ctx context.Context, end uint64, marks []uint64) (counted int, err error) {
	from := slices.Min(marks)
	if !mostBehind(marks, from, end) {
		return 0, nil
	}
	r := &consumerCatchUp{catchUpRead: t.newCatchUpRead(end, from, marks), seq: from, pending: end - from}
	t.catchingUp.Store(end - from)
	in, stop, err := t.consume(ctx, from, votelog.AllVotes, catchUpPull)
	if err != nil {
		return 0, err
	}
	defer stop()
	in.gather(catchUpTake, catchUpLinger)
	var got []jetstream.Msg
	for {
		if got = in.take(ctx, got, catchUpIdle); got == nil {
			if ctx.Err() != nil {
				return r.counted, ctx.Err()
			}
			return r.counted, fmt.Errorf("tally: no message for %v at sequence %d of %d", catchUpIdle, r.seq, end)
		}
		for _, m := range got {
			r.add(m)
		}
		done, err := r.flush(ctx)
		if err != nil || done {
			return r.counted, err
		}
	}
}

// mostBehind reports whether at least half of the shards have at least
// half of the way from from to end to go. Reading the log unfiltered costs
// several times what one filtered reader skipping through it does: worth
// it for a fresh store, not when one shard of a Redis store lost its
// watermark.
func mostBehind(marks []uint64, from, end uint64) bool {
	behind := 0
	for _, mark := range marks {
		if end-mark >= (end-from)/2 {
			behind++
		}
	}
	return 2*behind >= len(marks)
}

// add folds m into the batch of its subject's shard. A message of a shard
// left to its worker is only kept for observe.
func (r *consumerCatchUp) add(m jetstream.Msg) {
	seq, left, err := position(m)
	if err != nil {
		r.t.log.Error("tally: message without metadata", "err", err)
		return
	}
	if seq <= r.seq {
		return // a redelivery: handled already
	}
	r.seq, r.pending = seq, left
	if shard, _, ok := votelog.ParseVoteSubject(m.Subject()); ok && shard < len(r.bs) && r.bs[shard] != nil {
		r.bs[shard].addMessage(seq, m.Data(), &r.one, r.keep)
		return
	}
	if r.keep != nil {
		_ = r.dec.Each(&r.one, m.Data(), func(_ int, err error) error {
			if err == nil {
				r.keep(&r.one)
			}
			return nil
		})
	}
}

// flush observes and applies what the last take added, and reports
// whether the read reached the end. A fenced shard is left to its worker.
func (r *consumerCatchUp) flush(ctx context.Context) (done bool, err error) {
	if err := r.observed(r.seq, r.pending); err != nil {
		return false, err
	}
	for shard, b := range r.bs {
		if b == nil || b.empty() {
			continue
		}
		n, err := r.t.commit(ctx, b, r.touched)
		if errors.Is(err, ErrFenced) {
			r.t.log.Warn("tally: shard fenced off while catching up; its worker takes it over", "shard", shard)
			r.bs[shard] = nil
			continue
		}
		if err != nil {
			return false, err
		}
		r.counted += n
	}
	r.t.catchingUp.Store(r.pending)
	done = r.seq >= r.end || r.pending == 0
	r.touched.publish(ctx, r.t, done)
	return done, nil
}

// keptRecords holds copies of the records a reader hands to
// Config.Observe, take after take: each copy keeps its backing arrays, so
// once warm, keeping a record allocates nothing.
type keptRecords struct {
	recs []*votelog.Record
	n    int
}

// keep copies r (whose slices a Decoder reuses) and returns the copy,
// valid until reset.
func (k *keptRecords) keep(r *votelog.Record) *votelog.Record {
	if k.n == len(k.recs) {
		k.recs = append(k.recs, new(votelog.Record))
	}
	c := k.recs[k.n]
	k.n++
	opts, voter := c.Options[:0], c.Voter[:0]
	*c = *r
	c.Options, c.Voter = append(opts, r.Options...), append(voter, r.Voter...)
	return c
}

// kept returns the records kept since reset, in order.
func (k *keptRecords) kept() []*votelog.Record { return k.recs[:k.n] }

func (k *keptRecords) reset() { k.n = 0 }
