package ingest

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pollcast/pollcast/poll"
	"github.com/pollcast/pollcast/votelog"
)

// publish sends prepared votes of one poll to the log as one message
// without waiting for the ack: they share its future. A vote the log
// cannot take is settled and refused at once.
//
// Every message carries an ID chosen before the first attempt (a keyed
// single vote's vote ID, an internal ID otherwise), so that an attempt
// whose answer is lost can be repeated without storing the votes twice
// (see resolve).
func (s *Service) publish(ctx context.Context, vs []*vote) {
	id := vs[0].msgID
	if len(vs) > 1 || id == "" {
		id = newMsgID()
	}
	ack := &logAck{subject: vs[0].subject, data: encode(vs), msgID: id, first: time.Now(), done: make(chan struct{})}
	fail := func(err *poll.Error) {
		for _, v := range vs {
			v.err = err
			s.finish(ctx, v, false)
		}
	}
	if s.nc.Status() != nats.CONNECTED {
		fail(overloaded("the vote log is unreachable"))
		return
	}
	fut, err := s.js.PublishMsgAsync(ack.msg(), jetstream.WithMsgID(id))
	if err != nil {
		s.cfg.Logger.Warn("ingest: publish", "err", err)
		fail(overloaded("the vote log is not keeping up"))
		return
	}
	ack.fut = fut
	for _, v := range vs {
		v.ack = ack
	}
}

// encode returns the log message of vs: one record, or a pack of them.
func encode(vs []*vote) []byte {
	if len(vs) == 1 {
		return vs[0].rec.Append(make([]byte, 0, vs[0].rec.Size()))
	}
	recs := make([]votelog.Record, len(vs))
	size := 0
	for i, v := range vs {
		recs[i] = v.rec
		size += v.rec.Size()
	}
	return votelog.AppendMessage(make([]byte, 0, size+8), recs)
}

// packer groups the votes of a batch by poll, the polls in the
// order they came, for publishPacks.
type packer struct {
	byPoll map[string][]*vote
	order  []string
}

func (p *packer) add(v *vote) {
	if p.byPoll == nil {
		p.byPoll = map[string][]*vote{}
	}
	id := v.rec.PollID
	if _, ok := p.byPoll[id]; !ok {
		p.order = append(p.order, id)
	}
	p.byPoll[id] = append(p.byPoll[id], v)
}

// publishPacks sends each poll's votes of p to the log through the group
// commit, in as few messages as packLen allows.
func (s *Service) publishPacks(ctx context.Context, p *packer) {
	for _, id := range p.order {
		s.gc.submit(ctx, id, p.byPoll[id])
	}
}

// maxPackBytes bounds the encoding of a pack, well under the 1 MiB a NATS
// message may hold by default.
const maxPackBytes = 256 << 10

// packLen returns how many of vs, from the first, go in one message.
func packLen(vs []*vote) int {
	size := 0
	for i, v := range vs {
		size += v.rec.Size()
		if i == votelog.MaxPack || (i > 0 && size > maxPackBytes) {
			return i
		}
	}
	return len(vs)
}

// logAck is the log's answer to one message, which every vote in it waits
// for. The future yields it once: the waiter that takes it shares it with
// the others through done. When the answer does not come (a timeout, a
// lost connection), that waiter starts resolve, which learns the outcome
// and then closes done.
type logAck struct {
	subject string
	data    []byte
	msgID   string
	first   time.Time // when the first attempt was sent
	fut     jetstream.PubAckFuture
	done    chan struct{}
	stored  bool
	err     error // why it was not stored
	unknown bool  // the service stopped before the outcome was learned
}

// msg returns a new message with the log message's subject and bytes.
func (a *logAck) msg() *nats.Msg {
	return &nats.Msg{Subject: a.subject, Data: a.data}
}

// wait waits for the answer until stop is closed, and reports whether it
// came.
func (s *Service) wait(a *logAck, stop <-chan struct{}) bool {
	select {
	case <-a.done:
	case <-a.fut.Ok():
		a.stored = true
		close(a.done)
	case err := <-a.fut.Err():
		if !refused(err) {
			s.wg.Go(func() { s.resolve(a, err) })
			select {
			case <-a.done:
			case <-stop:
				return false
			}
			break
		}
		a.err = err
		close(a.done)
	case <-stop:
		return false
	}
	return true
}

// await waits for the log's acknowledgement of a started vote. A vote
// whose outcome is not known when ctx ends is settled in the background
// once it is (settleLater), and answered with errPending, never with a
// 503: it may be stored.
func (s *Service) await(ctx context.Context, v *vote) {
	if v.err != nil || v.stored {
		return
	}
	if !s.wait(v.ack, ctx.Done()) {
		// The claim is settled by the outcome, not released now: a
		// release would let the voter vote again while this vote may be
		// landing.
		v.err = errPending
		s.wg.Go(func() { s.settleLater(v) })
		return
	}
	switch {
	case v.ack.unknown:
		v.err = errPending
		return // the claim stays: the outcome is unknown
	case !v.ack.stored:
		s.noteLogAnswer(v.ack.err)
		v.err = s.notStored(v.ack.err)
	default:
		s.noteLogAnswer(nil)
		if s.abandon {
			return
		}
	}
	s.finish(ctx, v, v.ack.stored)
}

// settleLater settles the claim of a vote nobody waits for any more, once
// its outcome is known. When the service stops first, the claim is left
// as it is: a memory registry goes with the process and is rebuilt from
// the log; a durable one's pending claim is committed by the reader of
// the log if the vote is there, and expires otherwise.
func (s *Service) settleLater(v *vote) {
	if !s.wait(v.ack, s.life.Done()) || v.ack.unknown {
		return
	}
	s.finish(context.Background(), v, v.ack.stored)
}

// finish settles the voter's claim once the outcome is known. A registry
// error here is logged: the vote's answer is already decided by the log,
// and a pending claim expires by itself.
func (s *Service) finish(ctx context.Context, v *vote, stored bool) {
	var err error
	switch {
	case v.claimed:
		err = s.voters.Finish(ctx, v.key, v.id, stored)
	case stored && v.remember:
		err = s.voters.Record(ctx, v.key, v.id)
	}
	if err != nil {
		s.cfg.Logger.Warn("ingest: settle voter claim", "err", err)
	}
	if v.keyed {
		if err := s.keys.Finish(ctx, v.id, v.rec.Time, stored); err != nil {
			s.cfg.Logger.Warn("ingest: settle idempotency key", "err", err)
		}
	}
}
