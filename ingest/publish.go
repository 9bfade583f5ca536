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
func (s *Service) publish(ctx context.Context, vs []*vote) {
	msg := &nats.Msg{Subject: vs[0].subject, Data: encode(vs)}
	var opts []jetstream.PublishOpt
	if len(vs) == 1 && vs[0].msgID != "" {
		opts = append(opts, jetstream.WithMsgID(vs[0].msgID))
	}
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
	fut, err := s.js.PublishMsgAsync(msg, opts...)
	if err != nil {
		s.cfg.Logger.Warn("ingest: publish", "err", err)
		fail(overloaded("the vote log is not keeping up"))
		return
	}
	ack := &logAck{fut: fut, done: make(chan struct{})}
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

// packer groups the keyless votes of a batch by poll, the polls in the
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
// the others through done.
type logAck struct {
	fut    jetstream.PubAckFuture
	done   chan struct{}
	stored bool
	err    error // why it was not stored
}

// wait waits for the answer until stop is closed, and reports whether it
// came.
func (a *logAck) wait(stop <-chan struct{}) bool {
	select {
	case <-a.done:
	case <-a.fut.Ok():
		a.stored = true
		close(a.done)
	case err := <-a.fut.Err():
		a.err = err
		close(a.done)
	case <-stop:
		return false
	}
	return true
}

// await waits for the log's acknowledgement of a started vote.
func (s *Service) await(ctx context.Context, v *vote) {
	if v.err != nil || v.stored {
		return
	}
	if !v.ack.wait(ctx.Done()) {
		// The vote may still be stored: the client retries with its
		// idempotency key and gets the same answer. Its claim is settled
		// by the log's own answer, not released now: a release would let
		// the voter vote again while this vote is still landing.
		v.err = overloaded("gave up waiting for the vote log")
		s.wg.Go(func() { s.settleLater(v) })
		return
	}
	s.noteLogAnswer(v.ack.err)
	if !v.ack.stored {
		v.err = s.notStored(v.ack.err)
	}
	s.finish(ctx, v, v.ack.stored)
}

// settleLater settles the claim of a vote nobody waits for any more, once
// the log answers, or as not stored when it has not after PublishTimeout
// (the publish itself has timed out by then).
func (s *Service) settleLater(v *vote) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.PublishTimeout+time.Second)
	defer cancel()
	stored := v.ack.wait(ctx.Done()) && v.ack.stored
	s.finish(context.Background(), v, stored)
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
}
