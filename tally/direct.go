package tally

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pollcast/pollcast/votelog"
)

// directBatch is how many messages one direct get asks for.
const directBatch = 16384

// The start-up catch-up of a fresh memory store reads the log with batched
// direct gets without headers ($JS.API.DIRECT.GET), not with a consumer:
// the server then neither formats an ack subject for every message nor
// keeps a consumer's state, and the client parses bare messages. Reading a
// million votes costs about a third less CPU (TestRebuildAtStart).
//
// What such a read gives up is each message's subject and sequence. The
// sequences are known all the same: a batch asked from sequence s ends
// with a status message naming its last sequence l, and when it held
// l-s+1 messages they are s..l in order; when it held fewer (messages
// deleted in between), the batch is dropped and the rest of the log is read
// with a consumer. Without the subject, a vote goes to the shard of its
// poll (votelog.Shard), where ingest publishes it. To stay exact even for
// a vote published on another shard's subject (a log written with another
// shard count), every batch moves every shard's watermark to its last
// sequence: the log up to there is folded whatever the shards, and the
// shard workers, which read by subject, go on from there. Shards applied
// one after another are not one atomic step, which is why only a store
// that dies with the process (the memory store, rebuilt from nothing) is
// read this way: no crash can leave it between two shards.

// directMsg is what the direct read's handler hands to the catch-up: a
// vote message, or the end of a batch.
type directMsg struct {
	data []byte // a message of the log; nil at the end of a batch
	last uint64 // at the end of a batch: the sequence of its last message, 0 if it held none
	err  error  // at the end of a batch: the read failed
}

// directReader asks for the log in batches and puts what comes back in an
// inbox. The next batch is asked for as soon as one ends, while the
// catch-up folds the one before.
type directReader struct {
	nc     *nats.Conn
	subj   string // the direct get subject of the stream
	prefix string // replies come to prefix.<n> for the nth batch asked
	end    uint64 // asks for nothing past this sequence
	in     *inbox[directMsg]
	n      atomic.Uint64 // the batch being answered; replies to others are dropped
	sub    *nats.Subscription
	ctx    context.Context // ends with stop: frees a handler waiting for room
	cancel context.CancelFunc
}

// startDirect starts reading the log from sequence from with direct gets.
func (t *Tally) startDirect(ctx context.Context, from, end uint64) (*directReader, error) {
	d := &directReader{
		nc:     t.nc,
		subj:   apiPrefix(t.js) + "DIRECT.GET." + votelog.StreamName,
		prefix: t.nc.NewInbox(),
		end:    end,
		in:     newInbox[directMsg](2 * directBatch),
	}
	d.ctx, d.cancel = context.WithCancel(ctx)
	d.in.gather(catchUpTake, catchUpLinger)
	sub, err := t.nc.Subscribe(d.prefix+".*", d.handle)
	if err != nil {
		d.cancel()
		return nil, fmt.Errorf("tally: direct read: %w", err)
	}
	d.sub = sub
	// At most two batches are on their way: no need for the default limits.
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		d.stop()
		return nil, fmt.Errorf("tally: direct read: %w", err)
	}
	if err := d.ask(1, from); err != nil {
		d.stop()
		return nil, err
	}
	return d, nil
}

// stop drops the replies still to come.
func (d *directReader) stop() {
	d.n.Store(0)
	d.cancel()
	_ = d.sub.Unsubscribe()
}

// ask asks for the nth batch, from sequence seq.
func (d *directReader) ask(n, seq uint64) error {
	d.n.Store(n)
	req := fmt.Appendf(nil, `{"seq":%d,"batch":%d,"no_hdr":true}`, seq, directBatch)
	if err := d.nc.PublishRequest(d.subj, d.prefix+"."+strconv.FormatUint(n, 10), req); err != nil {
		return fmt.Errorf("tally: direct read: %w", err)
	}
	return nil
}

// handle runs on the subscription's goroutine for every reply.
func (d *directReader) handle(m *nats.Msg) {
	n, err := strconv.ParseUint(strings.TrimPrefix(m.Subject, d.prefix+"."), 10, 64)
	if err != nil || n != d.n.Load() {
		return // a reply to a batch given up
	}
	if m.Header == nil { // asked without headers: only status messages have some
		d.in.put(d.ctx, directMsg{data: m.Data})
		return
	}
	switch status := m.Header.Get("Status"); status {
	case "204": // the end of the batch
		last, err := strconv.ParseUint(m.Header.Get("Nats-Last-Sequence"), 10, 64)
		if err != nil {
			d.in.put(d.ctx, directMsg{err: fmt.Errorf("tally: direct read: end of batch without its last sequence: %w", err)})
			return
		}
		if last < d.end {
			if err := d.ask(n+1, last+1); err != nil {
				d.in.put(d.ctx, directMsg{err: err})
				return
			}
		}
		d.in.put(d.ctx, directMsg{last: last})
	case "404": // nothing from the sequence asked on: the log ends before (deleted messages), or a replica lags
		d.in.put(d.ctx, directMsg{})
	default:
		d.in.put(d.ctx, directMsg{err: fmt.Errorf("tally: direct read: status %s %s", status, m.Header.Get("Description"))})
	}
}

// apiPrefix returns the subject prefix of js's API requests.
func apiPrefix(js jetstream.JetStream) string {
	o := js.Options()
	switch {
	case o.APIPrefix != "":
		return strings.TrimSuffix(o.APIPrefix, ".") + "."
	case o.Domain != "":
		return "$JS." + o.Domain + ".API."
	default:
		return "$JS.API."
	}
}

// errGap stops a direct read that met a batch with deleted messages.
var errGap = errors.New("tally: direct read: a batch has deleted messages; reading on with a consumer")

// catchUpDirect folds the log from the start up to end at least (see
// directReader) into the store: bs are the batchers of every shard, all
// at watermark 0. It returns the votes counted and the sequence up to
// which every shard's watermark then stands, and why it stopped before
// end, if it did.
func (t *Tally) catchUpDirect(ctx context.Context, end uint64, bs []*batcher, observe func([]*votelog.Record, uint64) error) (counted int, mark uint64, err error) {
	d, err := t.startDirect(ctx, 1, end)
	if err != nil {
		return 0, 0, err
	}
	defer d.stop()

	var dec votelog.Decoder
	var one votelog.Record      // each vote is decoded into it
	var kept keptRecords        // the records of a batch, for observe
	shardOf := map[string]int{} // poll ID → shard
	next := uint64(1)           // the sequence of the next message of the batch
	touched := newTouched()
	var got []directMsg
	for {
		if got = d.in.take(ctx, got, catchUpIdle); got == nil {
			if ctx.Err() != nil {
				return counted, mark, ctx.Err()
			}
			return counted, mark, fmt.Errorf("tally: direct read: nothing for %v at sequence %d of %d", catchUpIdle, next, end)
		}
		for _, m := range got {
			if m.data != nil {
				seq := next
				next++
				// Without headers, a message's poll (and so its shard)
				// is in its votes: all of one poll.
				started := -1 // the shard whose batch took the message
				_ = dec.Each(&one, m.data, func(i int, err error) error {
					if err != nil {
						t.log.Error("tally: skipping a bad record", "seq", seq, "index", i, "err", err)
						return nil
					}
					shard, ok := shardOf[one.PollID]
					if !ok {
						shard = votelog.Shard(one.PollID, len(bs))
						shardOf[one.PollID] = shard
					}
					if shard != started && !bs[shard].start(seq) {
						return nil // a redelivery, or a pack mixing polls: ingest writes neither
					}
					started = shard
					bs[shard].fold(&one)
					if observe != nil {
						kept.keep(&one)
					}
					return nil
				})
				continue
			}
			// The end of a batch.
			switch {
			case m.err != nil:
				return counted, mark, m.err
			case m.last == 0:
				return counted, mark, fmt.Errorf("tally: direct read: no message from sequence %d on, the log ends at %d", mark+1, end)
			case m.last != next-1:
				return counted, mark, errGap
			}
			if observe != nil {
				if err := observe(kept.kept(), end-min(end, m.last)); err != nil {
					return counted, mark, fmt.Errorf("tally: observe: %w", err)
				}
				t.observed.Store(m.last)
				kept.reset()
			}
			for shard, b := range bs {
				b.advance(m.last)
				if err := t.apply(ctx, &b.batch); err != nil {
					return counted, mark, err // ErrFenced included: the workers take over from the stored watermarks
				}
				t.shards[shard].applied.Store(m.last)
				counted += b.counted
				t.applied.Add(float64(b.counted))
				t.batches.Inc()
				for id := range b.batch.Polls {
					touched.add(id)
				}
				b.reset(m.last)
			}
			mark = m.last
			t.direct.Store(mark)
			t.catchingUp.Store(end - min(end, mark))
			done := mark >= end
			touched.publish(ctx, t, done)
			if done {
				return counted, mark, nil
			}
		}
	}
}
