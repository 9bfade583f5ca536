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
	// catchUpIdle ends the start-up reader when the log goes quiet before
	// the sequence it aimed for (deleted messages at the end).
	catchUpIdle = 5 * time.Second
	// catchUpPull is how many messages the start-up reader asks for at
	// once: 16,384 rather than 4,096 took a million-vote rebuild from 3.4 s
	// to 3.0 s (TestRebuildAtStart).
	catchUpPull = 16384
	// catchUpTake and catchUpLinger: the start-up reader handles what has
	// arrived once it is catchUpTake messages or once the first of them
	// waited catchUpLinger. Taking what had arrived at once, it kept up
	// with the log by handling 18 messages at a time on average, paying for
	// each handful what is paid once a take (a store batch per shard, a
	// lock per registry shard, waking up): 1.4 s of CPU for a million
	// votes, 1.0 s in takes of 4,096 (TestRebuildAtStart's profile).
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
// A fresh memory store is read with direct gets rather than a consumer
// (see catchUpDirect), and with a consumer from wherever that stopped.
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

// Observed returns the stream sequence up to which every vote record of
// the log went through Config.Observe: zero when none did. It is final once
// WaitCaughtUp returned.
func (t *Tally) Observed() uint64 { return t.observed.Load() }

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
	marks := make([]uint64, len(t.shards))
	for shard := range marks {
		if marks[shard], err = t.store.Watermark(ctx, shard); err != nil {
			return 0, fmt.Errorf("tally: watermark: %w", err)
		}
		t.shards[shard].applied.Store(marks[shard])
	}
	from := slices.Min(marks)
	if from >= end {
		return 0, nil
	}
	if _, volatile := t.store.(*MemoryStore); volatile && slices.Max(marks) == 0 && info.Config.AllowDirect {
		bs := make([]*batcher, len(marks))
		for shard := range bs {
			bs[shard] = newBatcher(shard, t.log, t.cat.Deleted)
			bs[shard].reset(0)
		}
		t.catchingUp.Store(end)
		n, mark, err := t.catchUpDirect(ctx, end, bs, t.cfg.Observe)
		counted += n
		switch {
		case err == nil:
			return counted, nil
		case ctx.Err() != nil:
			return counted, ctx.Err()
		}
		t.log.Warn("tally: direct read of the log stopped; reading the rest with a consumer", "at", mark, "err", err)
		for shard := range marks {
			if marks[shard], err = t.store.Watermark(ctx, shard); err != nil {
				return counted, fmt.Errorf("tally: watermark: %w", err)
			}
		}
		if from = slices.Min(marks); from >= end {
			return counted, nil
		}
	}
	n, err := t.catchUpConsumer(ctx, end, marks, from)
	return counted + n, err
}

// catchUpConsumer is catchUpOnce's read of the log from sequence from+1
// (the lowest of marks, the shards' watermarks) with an ordered consumer,
// routing each message to its shard by subject.
func (t *Tally) catchUpConsumer(ctx context.Context, end uint64, marks []uint64, from uint64) (counted int, err error) {
	// Reading the log unfiltered costs about what nine filtered readers
	// skipping through it do (measured): worth it only when at least half
	// of the shards have at least half of the way to go (a fresh memory
	// store), not when one shard of a Redis store lost its watermark.
	behind := 0
	for _, mark := range marks {
		if end-mark >= (end-from)/2 {
			behind++
		}
	}
	if 2*behind < len(marks) {
		return 0, nil
	}
	bs := make([]*batcher, len(marks)) // nil: shard left to its worker
	for shard, mark := range marks {
		bs[shard] = newBatcher(shard, t.log, t.cat.Deleted)
		bs[shard].reset(mark)
	}
	// Observe sees the whole log or nothing, so that Observed means "up to here".
	observe := t.cfg.Observe
	if from != t.observed.Load() {
		observe = nil
	}
	t.catchingUp.Store(end - from)
	in, stop, err := t.consume(ctx, from, "", catchUpPull)
	if err != nil {
		return 0, err
	}
	defer stop()
	in.gather(catchUpTake, catchUpLinger)

	seq, pending := from, end-from // the last message read and what follows it
	var got []jetstream.Msg
	var dec votelog.Decoder // for the records of shards left to their workers
	var one votelog.Record  // each vote is decoded into it
	var kept keptRecords    // the records of a take, for observe
	var keep func(*votelog.Record)
	if observe != nil {
		keep = func(r *votelog.Record) { kept.keep(r) }
	}
	touched := newTouched()
	for {
		if got = in.take(ctx, got, catchUpIdle); got == nil {
			if ctx.Err() != nil {
				return counted, ctx.Err()
			}
			return counted, fmt.Errorf("tally: no message for %v at sequence %d of %d", catchUpIdle, seq, end)
		}
		for _, m := range got {
			s, left, err := position(m)
			if err != nil {
				t.log.Error("tally: message without metadata", "err", err)
				continue
			}
			if s <= seq {
				continue // a redelivery: handled already
			}
			seq, pending = s, left
			if shard, known := subjectShard(m.Subject()); known && shard < len(bs) && bs[shard] != nil {
				bs[shard].addMessage(s, m.Data(), &one, keep)
			} else if observe != nil {
				_ = dec.Each(&one, m.Data(), func(_ int, err error) error {
					if err == nil {
						keep(&one)
					}
					return nil
				})
			}
		}
		if observe != nil && seq > t.observed.Load() {
			if err := observe(kept.kept(), pending); err != nil {
				return counted, fmt.Errorf("tally: observe: %w", err)
			}
			t.observed.Store(seq)
			kept.reset()
		}
		for shard, b := range bs {
			if b == nil || b.empty() {
				continue
			}
			err := t.apply(ctx, &b.batch)
			if errors.Is(err, ErrFenced) {
				t.log.Warn("tally: shard fenced off while catching up; its worker takes it over", "shard", shard)
				bs[shard] = nil
				continue
			}
			if err != nil {
				return counted, err
			}
			t.shards[shard].applied.Store(b.batch.Last)
			counted += b.counted
			t.applied.Add(float64(b.counted))
			t.batches.Inc()
			for id := range b.batch.Polls {
				touched.add(id)
			}
			b.reset(b.batch.Last)
		}
		t.catchingUp.Store(pending)
		done := seq >= end || pending == 0
		touched.publish(ctx, t, done)
		if done {
			return counted, nil
		}
	}
}

// touchedPolls gathers the polls a catch-up changed and publishes their
// counts at most every catchUpPublishEvery, and at the end.
type touchedPolls struct {
	ids       map[string]struct{}
	published time.Time
}

func newTouched() *touchedPolls {
	return &touchedPolls{ids: map[string]struct{}{}, published: time.Now()}
}

func (p *touchedPolls) add(id string) { p.ids[id] = struct{}{} }

// publish publishes the counts of the polls touched since the last time,
// if it is time, or now with done.
func (p *touchedPolls) publish(ctx context.Context, t *Tally, done bool) {
	if !done && time.Since(p.published) < catchUpPublishEvery {
		return
	}
	for id := range p.ids {
		t.publish(ctx, id)
	}
	clear(p.ids)
	p.published = time.Now()
}
