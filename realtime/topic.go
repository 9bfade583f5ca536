package realtime

import (
	"encoding/json"
	"slices"
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

	mu      sync.Mutex
	viewers map[*viewer]struct{}
	lanes   []*lane // the viewers again, in groups served in turn
	next    int     // the lane whose turn it is
	counts  poll.Counts
	flushAt *time.Timer // armed while a lane lacks the newest counts
	clock   *time.Timer // fires at the poll's next status change
	stopped bool
}

// lane is a group of a topic's viewers (at most HubConfig.LaneSize) that
// get results together. The lanes of a crowded poll take turns, spaced
// evenly over the poll's interval: its viewers get results as often as
// before, but the hub writes a lane at a time instead of all of them at
// once, so no viewer waits behind a burst of ten thousand writes.
type lane struct {
	viewers  map[*viewer]struct{}
	version  int64     // of the counts posted last
	lastSent time.Time // when results were posted last
}

func newTopic(h *Hub, id string) *topic {
	return &topic{id: id, hub: h, ready: make(chan struct{}), viewers: map[*viewer]struct{}{}}
}

// addLocked adds a viewer to the topic, in its smallest lane, or a new
// one when every lane is full.
func (t *topic) addLocked(v *viewer) {
	t.viewers[v] = struct{}{}
	var smallest *lane
	for _, l := range t.lanes {
		if smallest == nil || len(l.viewers) < len(smallest.viewers) {
			smallest = l
		}
	}
	if smallest == nil || len(smallest.viewers) >= t.hub.cfg.LaneSize {
		// It has seen what the viewers have: a new viewer gets the
		// current state from initial.
		smallest = &lane{viewers: map[*viewer]struct{}{}, version: t.counts.Version}
		t.lanes = append(t.lanes, smallest)
	}
	smallest.viewers[v] = struct{}{}
	v.lane = smallest
}

// removeLocked removes a viewer from the topic; an emptied lane goes.
func (t *topic) removeLocked(v *viewer) {
	delete(t.viewers, v)
	l := v.lane
	if l == nil {
		return
	}
	delete(l.viewers, v)
	if len(l.viewers) > 0 {
		return
	}
	if i := slices.Index(t.lanes, l); i >= 0 {
		t.lanes = slices.Delete(t.lanes, i, i+1)
		if t.next > i {
			t.next--
		}
		if t.next >= len(t.lanes) {
			t.next = 0
		}
	}
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

// scheduleLocked has the newest counts sent: to the lane whose turn it is
// now if its interval has passed, to the others in turn from the timer.
func (t *topic) scheduleLocked() {
	if t.flushAt != nil {
		return // already armed: it sends the newest counts
	}
	t.serveLocked()
}

// serveLocked posts the newest counts to the next lane that lacks them,
// if its interval has passed, and arms the timer for the next turn while a
// lane lacks them. Turns are the interval divided by the number of lanes
// apart; each lane gets at most a message an interval.
func (t *topic) serveLocked() {
	if len(t.lanes) == 0 {
		return
	}
	d := t.intervalLocked()
	now := time.Now()
	for range len(t.lanes) {
		l := t.lanes[t.next]
		if l.version >= t.counts.Version {
			t.next = (t.next + 1) % len(t.lanes) // nothing new for it
			continue
		}
		if wait := d - now.Sub(l.lastSent); wait > 0 {
			t.armLocked(wait)
			return
		}
		p, ok := t.hub.cat.Poll(t.id)
		if !ok {
			return // deleted: pollChanged closes the viewers
		}
		t.postLocked(p, l, now, nil)
		t.next = (t.next + 1) % len(t.lanes)
		for _, other := range t.lanes {
			if other.version < t.counts.Version {
				t.armLocked(d / time.Duration(len(t.lanes)))
				return
			}
		}
		return
	}
}

func (t *topic) armLocked(wait time.Duration) {
	t.flushAt = time.AfterFunc(wait, func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		t.flushAt = nil
		if !t.stopped {
			t.serveLocked()
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

// broadcastLocked posts the current results to every lane now: for poll
// changes, which every viewer must get at once.
func (t *topic) broadcastLocked() {
	p, ok := t.hub.cat.Poll(t.id)
	if !ok {
		return // deleted: pollChanged closes the viewers
	}
	now := time.Now()
	var msg *outMsg
	for _, l := range t.lanes {
		msg = t.postLocked(p, l, now, msg)
	}
}

// postLocked posts the current results to a lane's viewers: O(viewers)
// pointer swaps, never a blocking send. Each viewer gets the shared
// results message or the shared hidden message; msg is the results message
// when encoded already, and the one used is returned.
func (t *topic) postLocked(p *poll.Poll, l *lane, now time.Time, msg *outMsg) *outMsg {
	l.version, l.lastSent = t.counts.Version, now
	var visible [4]int8 // ResultsVisibleAt by (owner, voted): 0 unknown, 1 yes, -1 no
	for v := range l.viewers {
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
	return msg
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
