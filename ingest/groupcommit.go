package ingest

import (
	"context"
	"sync"
)

// Group commit: the votes of one poll that arrive while a message of that
// poll is on its way to the log share the next message. With the log
// flushing every message to disk before it answers, the flush is paid per
// message, not per vote.
//
// The contract, per poll:
//
//   - A vote arriving while nothing of its poll is in flight is published at
//     once by its own goroutine: no timer, no added latency at low load.
//   - While messages the committer published for a poll are in flight
//     (published, not yet answered), the poll's votes that arrive
//     wait in its queue. When every one of those messages is answered, the
//     whole queue goes to the log at once, in as few packs as packLen allows,
//     and the poll is in flight again until they are answered.
//   - A pack is one message on one poll's subject: polls never share one.
//   - Each vote is answered from its own message's acknowledgement (await):
//     a pack the log refuses refuses every vote in it, and each voter's claim
//     is released as for a single vote.
//   - A queued vote whose request context ends before it is published leaves
//     the queue: its claim is released and it is answered 503 overloaded.
//     Once published, it is the log's to answer.
//   - Queued votes count against MaxPending: a vote that would queue past it
//     is refused 503 overloaded at once.
//
// Votes with an idempotency key join packs like the others: the key
// registry (keys.go), not the log's message-ID window, recognises a retry.
type committer struct {
	s *Service
	// ctx ends with the service: queued votes are then refused.
	ctx context.Context

	mu     sync.Mutex
	polls  map[string]*pollLine // the polls with messages in flight
	queued int                  // votes waiting in every poll's queue
	closed bool                 // no new flushers: votes go straight to the log

	// hold, when set (tests only), is waited for before each flush takes a
	// poll's queue, so that a test can fill a queue deterministically.
	hold chan struct{}
}

// pollLine is a poll with messages in flight.
type pollLine struct {
	next *packQueue // the votes waiting for them; nil when none
}

// packQueue is the votes of one poll that wait to go to the log together.
type packQueue struct {
	votes []*vote
	taken bool          // under committer.mu: the flush took the votes; none may leave now
	sent  chan struct{} // closed once the votes were handed to the log (published, or refused)
}

func newCommitter(ctx context.Context, s *Service) *committer {
	return &committer{s: s, ctx: ctx, polls: map[string]*pollLine{}}
}

// submit sends vs, admitted votes of poll pollID, to the log: at
// once when nothing of the poll is in flight, else into the poll's queue.
// The caller then calls wait for each vote before await.
func (c *committer) submit(ctx context.Context, pollID string, vs []*vote) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		c.send(ctx, vs)
		return
	}
	l, busy := c.polls[pollID]
	if !busy {
		l = &pollLine{}
		c.polls[pollID] = l
		c.s.wg.Add(1) // under mu: Close waits for flushers only after closing
		c.mu.Unlock()
		acks := c.send(ctx, vs)
		go func() {
			defer c.s.wg.Done()
			c.flush(pollID, l, acks)
		}()
		return
	}
	if c.queued+len(vs) > c.s.cfg.MaxPending {
		c.mu.Unlock()
		for _, v := range vs {
			v.err = overloaded("too many votes are waiting for the vote log")
			c.s.finish(ctx, v, false)
		}
		return
	}
	q := l.next
	if q == nil {
		q = &packQueue{sent: make(chan struct{})}
		l.next = q
	}
	q.votes = append(q.votes, vs...)
	for _, v := range vs {
		v.queue = q
	}
	c.queued += len(vs)
	c.mu.Unlock()
}

// wait returns once v left its poll's queue, if it was queued: published
// (await takes it from there), refused, or dropped because ctx ended first.
func (c *committer) wait(ctx context.Context, v *vote) {
	q := v.queue
	if q == nil {
		return
	}
	select {
	case <-q.sent:
		return
	case <-ctx.Done():
	}
	c.mu.Lock()
	if q.taken {
		c.mu.Unlock()
		<-q.sent // being published now: its answer belongs to the log
		return
	}
	// Set under mu: the flush skips the votes with an error.
	v.err = overloaded("gave up waiting for the vote log")
	c.queued--
	c.mu.Unlock()
	c.s.finish(context.WithoutCancel(ctx), v, false)
}

// send publishes vs, votes of one poll, in as few messages as packLen
// allows, and returns the answers to wait for.
func (c *committer) send(ctx context.Context, vs []*vote) []*logAck {
	var acks []*logAck
	for len(vs) > 0 {
		n := packLen(vs)
		c.s.publish(ctx, vs[:n])
		if a := vs[0].ack; a != nil {
			acks = append(acks, a)
		}
		vs = vs[n:]
	}
	return acks
}

// flush is a poll's flusher: it waits for the answers to the messages in
// flight, then sends what queued meanwhile, until the queue is empty. It
// runs while the poll has messages in flight.
func (c *committer) flush(pollID string, l *pollLine, acks []*logAck) {
	for {
		for _, a := range acks {
			c.s.wait(a, c.ctx.Done())
		}
		if c.hold != nil {
			select {
			case <-c.hold:
			case <-c.ctx.Done():
			}
		}
		c.mu.Lock()
		q := l.next
		if q == nil {
			delete(c.polls, pollID)
			c.mu.Unlock()
			return
		}
		l.next = nil
		q.taken = true
		live := q.votes[:0]
		for _, v := range q.votes {
			if v.err == nil { // not dropped by its client
				live = append(live, v)
			}
		}
		c.queued -= len(live)
		c.mu.Unlock()
		ctx := context.Background() // the votes' own contexts may end now: the log's answer settles them
		if c.ctx.Err() != nil {
			for _, v := range live {
				v.err = overloaded("the server is shutting down")
				c.s.finish(ctx, v, false)
			}
			acks = nil
		} else {
			acks = c.send(ctx, live)
		}
		close(q.sent)
	}
}

// close sends the votes that arrive from now on straight to the log; the
// flushers under way end once their queues are sent (or refused, after the
// service's context ended).
func (c *committer) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
}
