package realtime

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pollcast/pollcast/poll"
)

// topic is the live state of one poll on this hub: its viewers, its
// subscription to the tally's counts, and the conflation and clock timers.
// Everything it does under mu is non-blocking: encode once, swap pointers.
type topic struct {
	id    string
	hub   *Hub
	sub   *nats.Subscription // set before the topic is shared
	ready chan struct{}      // closed once the server knows the subscription

	mu       sync.Mutex
	viewers  map[*viewer]struct{}
	counts   poll.Counts
	lastSent time.Time
	flushAt  *time.Timer // armed while an update waits for MinInterval to pass
	clock    *time.Timer // fires at the poll's next status change
	stopped  bool
}

func newTopic(h *Hub, id string) *topic {
	return &topic{id: id, hub: h, ready: make(chan struct{}), viewers: map[*viewer]struct{}{}}
}

// start is called once by the viewer that created the topic: it waits
// until the NATS server has the subscription, then lets viewers read the
// store, and arms the clock.
func (t *topic) start() {
	if err := t.hub.nc.FlushTimeout(t.hub.cfg.WriteTimeout); err != nil {
		// Go on: the periodic resync makes up for a late subscription.
		t.hub.log.Warn("realtime: subscription not confirmed", "poll", t.id, "err", err)
	}
	close(t.ready)
	t.mu.Lock()
	defer t.mu.Unlock()
	if p, ok := t.hub.cat.Poll(t.id); ok && !t.stopped {
		t.armClockLocked(p)
	}
}

// shutdown stops the topic's subscription and timers and closes its
// viewers (none when the last one left).
func (t *topic) shutdown() {
	_ = t.sub.Unsubscribe()
	t.mu.Lock()
	t.stopped = true
	if t.flushAt != nil {
		t.flushAt.Stop()
	}
	if t.clock != nil {
		t.clock.Stop()
	}
	for v := range t.viewers {
		v.close(closeShutdown)
	}
	t.mu.Unlock()
}

// onCounts receives the counts the tally published.
func (t *topic) onCounts(m *nats.Msg) {
	var c poll.Counts
	if err := json.Unmarshal(m.Data, &c); err != nil {
		t.hub.log.Warn("realtime: bad counts message", "poll", t.id, "err", err)
		return
	}
	t.merge(c)
}

// merge takes counts newer than the topic's and schedules their broadcast.
func (t *topic) merge(c poll.Counts) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped || c.Version <= t.counts.Version {
		return
	}
	t.counts = c
	t.scheduleLocked()
}

// scheduleLocked sends the newest counts now, or arms the timer so they
// go out when MinInterval has passed since the last message.
func (t *topic) scheduleLocked() {
	if t.flushAt != nil {
		return // already armed: it will send the newest counts
	}
	wait := t.intervalLocked() - time.Since(t.lastSent)
	if wait <= 0 {
		t.broadcastLocked()
		return
	}
	t.flushAt = time.AfterFunc(wait, func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		t.flushAt = nil
		if !t.stopped {
			t.broadcastLocked()
		}
	})
}

// maxFanoutInterval is the longest FanoutRate spaces results messages.
const maxFanoutInterval = 500 * time.Millisecond

// intervalLocked is the least time between two results messages of this
// topic: MinInterval, longer (up to maxFanoutInterval) when its viewers
// would exceed FanoutRate.
func (t *topic) intervalLocked() time.Duration {
	d := t.hub.cfg.MinInterval
	if r := t.hub.cfg.FanoutRate; r > 0 {
		d = max(d, min(time.Duration(len(t.viewers))*time.Second/time.Duration(r), maxFanoutInterval))
	}
	return d
}

// broadcastLocked encodes the current results once and posts them to every
// viewer's mailbox: O(viewers) pointer swaps, never a blocking send. Each
// viewer gets the shared results message or the shared hidden message.
func (t *topic) broadcastLocked() {
	p, ok := t.hub.cat.Poll(t.id)
	if !ok {
		return // deleted: pollChanged closes the viewers
	}
	now := time.Now()
	t.lastSent = now
	var (
		msg     *outMsg // encoded on first use: not at all when every viewer is hidden
		visible [4]int8 // ResultsVisibleAt by (owner, voted): 0 unknown, 1 yes, -1 no
	)
	for v := range t.viewers {
		who := v.seen()
		k := 0
		if who.Owner {
			k |= 2
		}
		if who.Voted {
			k |= 1
		}
		if visible[k] == 0 {
			visible[k] = -1
			if p.ResultsVisibleAt(who, now) {
				visible[k] = 1
			}
		}
		if visible[k] < 0 {
			v.post(hiddenMsg)
			continue
		}
		if msg == nil {
			msg = encode("results", resultsMessage{Type: "results", Results: p.ResultsAt(t.counts, now)})
		}
		v.post(msg)
	}
}

// initial gives a new viewer the current state, merging counts read from
// the store (which may be newer than what the topic has seen).
func (t *topic) initial(v *viewer, c poll.Counts) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c.Version > t.counts.Version {
		t.counts = c
		if len(t.viewers) > 1 {
			t.scheduleLocked() // the others have not seen these counts yet
		}
	}
	t.sendStateLocked(v)
}

// refresh re-evaluates what one viewer may see (after it voted).
func (t *topic) refresh(v *viewer) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sendStateLocked(v)
}

func (t *topic) sendStateLocked(v *viewer) {
	p, ok := t.hub.cat.Poll(t.id)
	if !ok {
		t.goneLocked(v)
		return
	}
	now := time.Now()
	if p.ResultsVisibleAt(v.seen(), now) {
		v.post(encode("results", resultsMessage{Type: "results", Results: p.ResultsAt(t.counts, now)}))
	} else {
		v.post(hiddenMsg)
	}
}

// goneLocked gives viewers of a deleted poll its last, closed state and
// closes them normally.
func (t *topic) goneLocked(vs ...*viewer) {
	var msg *outMsg
	if p, ok := t.hub.cat.PollOrDeleted(t.id); ok {
		closed := p.Clone()
		closed.ClosedByHand = true // a deleted poll takes no more votes
		msg = encode("poll", pollMessage{Type: "poll", View: closed.ViewAt(time.Now(), false), Deleted: true})
	}
	for _, v := range vs {
		if msg != nil {
			v.postPoll(msg)
		}
		v.close(closeGone)
	}
}

// pollChanged sends the new definition to every viewer, re-evaluates who
// sees results, and closes the viewers of a deleted poll. The catalog's
// current snapshot is used rather than changed, so that callbacks arriving
// out of order never leave an old definition as the last word.
func (t *topic) pollChanged(changed *poll.Poll) {
	p, ok := t.hub.cat.PollOrDeleted(t.id)
	if !ok {
		p = changed
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	if p.DeletedAt != nil {
		if t.clock != nil {
			t.clock.Stop()
		}
		vs := make([]*viewer, 0, len(t.viewers))
		for v := range t.viewers {
			vs = append(vs, v)
		}
		t.goneLocked(vs...)
		return
	}
	msg := encode("poll", pollMessage{Type: "poll", View: p.ViewAt(time.Now(), false)})
	for v := range t.viewers {
		v.postPoll(msg) // before the results below: see writeLoop
	}
	t.armClockLocked(p)
	t.broadcastLocked() // status, options or visibility may have changed
}

// armClockLocked sets the timer for the poll's next status change by the
// clock (opening or closing on schedule).
func (t *topic) armClockLocked(p *poll.Poll) {
	if t.clock != nil {
		t.clock.Stop()
		t.clock = nil
	}
	next := p.NextChange(time.Now())
	if next.IsZero() {
		return
	}
	t.clock = time.AfterFunc(time.Until(next)+time.Millisecond, func() { t.pollChanged(p) })
}
