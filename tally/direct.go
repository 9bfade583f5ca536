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

// With Config.DirectRead, the start-up catch-up of an empty store reads the
// log with batched direct gets without headers ($JS.API.DIRECT.GET), not
// with a consumer: the server then neither formats an ack subject for
// every message nor keeps a consumer's state, and the client parses bare
// messages, so a rebuild takes less CPU.
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
// to be read this way: no crash can leave it between two shards.

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

// directCatchUp folds what a directReader reads: every shard's batcher
// takes the votes of its polls, and at the end of each direct get every
// shard's watermark moves to the get's last sequence.
type directCatchUp struct {
	*catchUpRead
	shardOf map[string]int // poll ID → shard
	next    uint64         // the sequence of the next message of the get
	mark    uint64         // every shard's watermark stands here
}

// catchUpDirect folds the log from the start up to end at least (see
// directReader) into a store with every shard at watermark 0. It returns
// the votes counted, the sequence up to which every shard's watermark then
// stands, and why it stopped before end, if it did.
func (t *Tally) catchUpDirect(ctx context.Context, end uint64) (counted int, mark uint64, err error) {
	r := &directCatchUp{
		catchUpRead: t.newCatchUpRead(end, 0, make([]uint64, len(t.shards))),
		shardOf:     map[string]int{},
		next:        1,
	}
	t.catchingUp.Store(end)
	d, err := t.startDirect(ctx, 1, end)
	if err != nil {
		return 0, 0, err
	}
	defer d.stop()
	var got []directMsg
	for {
		if got = d.in.take(ctx, got, catchUpIdle); got == nil {
			if ctx.Err() != nil {
				return r.counted, r.mark, ctx.Err()
			}
			return r.counted, r.mark, fmt.Errorf("tally: direct read: nothing for %v at sequence %d of %d", catchUpIdle, r.next, end)
		}
		for _, m := range got {
			if m.data != nil {
				r.add(m.data)
				continue
			}
			if err := r.flush(ctx, m); err != nil || r.mark >= end {
				return r.counted, r.mark, err
			}
		}
	}
}

// add folds the next message of the get. Without headers, its poll (and
// so its shard) is in its votes: all of one poll.
func (r *directCatchUp) add(data []byte) {
	seq := r.next
	r.next++
	started := -1 // the shard whose batch took the message
	_ = r.dec.Each(&r.one, data, func(i int, err error) error {
		if err != nil {
			r.t.log.Error("tally: skipping a bad record", "seq", seq, "index", i, "err", err)
			return nil
		}
		shard := r.shard(r.one.PollID)
		if shard != started && !r.bs[shard].start(seq) {
			return nil // a redelivery, or a pack mixing polls: ingest writes neither
		}
		started = shard
		r.bs[shard].fold(&r.one)
		if r.keep != nil {
			r.keep(&r.one)
		}
		return nil
	})
}

// shard returns the shard of a poll, hashing each poll ID once.
func (r *directCatchUp) shard(pollID string) int {
	shard, ok := r.shardOf[pollID]
	if !ok {
		shard = votelog.Shard(pollID, len(r.bs))
		r.shardOf[pollID] = shard
	}
	return shard
}

// flush handles end, the end of a get: it observes and applies what the
// get held, moving every shard's watermark to the get's last sequence.
// A fence stops the read, as the shards must move together: a consumer
// reads on from the stored watermarks.
func (r *directCatchUp) flush(ctx context.Context, end directMsg) error {
	switch {
	case end.err != nil:
		return end.err
	case end.last == 0:
		return fmt.Errorf("tally: direct read: no message from sequence %d on, the log ends at %d", r.mark+1, r.end)
	case end.last != r.next-1:
		return errGap
	}
	if err := r.observed(end.last, r.end-min(r.end, end.last)); err != nil {
		return err
	}
	for _, b := range r.bs {
		b.advance(end.last)
		n, err := r.t.commit(ctx, b, r.touched)
		if err != nil {
			return err
		}
		r.counted += n
	}
	r.mark = end.last
	r.t.direct.Store(r.mark)
	r.t.catchingUp.Store(r.end - min(r.end, r.mark))
	r.touched.publish(ctx, r.t, r.mark >= r.end)
	return nil
}
