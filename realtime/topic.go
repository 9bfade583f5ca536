package realtime

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pollcast/pollcast/poll"
	"github.com/pollcast/pollcast/votelog"
)

// topic is the live state of one poll on this hub: its viewers, its
// subscription to the tally's counts, and the conflation timer.
type topic struct {
	id  string
	hub *Hub

	mu       sync.Mutex
	viewers  map[*viewer]struct{}
	sub      *nats.Subscription
	counts   poll.Counts
	lastSent time.Time
	flushAt  *time.Timer // armed while an update waits for MinInterval to pass
	clock    *time.Timer // fires at the poll's next status change
	stopped  bool
}

func newTopic(h *Hub, id string) *topic {
	return &topic{id: id, hub: h, viewers: map[*viewer]struct{}{}}
}

func (t *topic) subscribe() error {
	sub, err := t.hub.nc.Subscribe(votelog.ResultsSubject(t.id), t.onCounts)
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		_ = sub.Unsubscribe()
		return nil
	}
	t.sub = sub
	if p, ok := t.hub.cat.Poll(t.id); ok {
		t.armClockLocked(p)
	}
	return nil
}

// shutdown stops the topic's subscription and timers and closes its viewers.
func (t *topic) shutdown() {
	t.mu.Lock()
	t.stopped = true
	if t.sub != nil {
		_ = t.sub.Unsubscribe()
	}
	if t.flushAt != nil {
		t.flushAt.Stop()
	}
	if t.clock != nil {
		t.clock.Stop()
	}
	viewers := make([]*viewer, 0, len(t.viewers))
	for v := range t.viewers {
		viewers = append(viewers, v)
	}
	t.mu.Unlock()
	for _, v := range viewers {
		v.close(closeShutdown)
	}
}

// onCounts receives the counts the tally published.
func (t *topic) onCounts(m *nats.Msg) {
	var c poll.Counts
	if err := json.Unmarshal(m.Data, &c); err != nil {
		t.hub.log.Warn("realtime: bad counts message", "poll", t.id, "err", err)
		return
	}
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
	wait := t.hub.cfg.MinInterval - time.Since(t.lastSent)
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

// broadcastLocked encodes the current results once and posts them to every
// viewer's mailbox: O(viewers) pointer swaps, never a blocking send.
func (t *topic) broadcastLocked() {
	p, ok := t.hub.cat.Poll(t.id)
	if !ok {
		return
	}
	t.lastSent = time.Now()
	now := t.lastSent
	msg := encode("results", resultsMessage{Type: "results", Results: p.ResultsAt(t.counts, now)})
	for v := range t.viewers {
		if p.ResultsVisibleAt(v.seen(), now) {
			v.post(msg)
		} else {
			v.post(hiddenMsg)
		}
	}
}

// initial gives a new viewer the current state, merging counts read from
// the store (which may be newer than what the topic has seen).
func (t *topic) initial(v *viewer, c poll.Counts) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c.Version > t.counts.Version {
		t.counts = c
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
		v.close(closeGone)
		return
	}
	now := time.Now()
	if p.ResultsVisibleAt(v.seen(), now) {
		v.post(encode("results", resultsMessage{Type: "results", Results: p.ResultsAt(t.counts, now)}))
	} else {
		v.post(hiddenMsg)
	}
}

// pollChanged sends the new definition to every viewer, re-evaluates who
// sees results, and closes the viewers of a deleted poll.
func (t *topic) pollChanged(p *poll.Poll) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	if p.DeletedAt != nil {
		for v := range t.viewers {
			v.close(closeGone)
		}
		return
	}
	msg := encode("poll", pollMessage{Type: "poll", View: p.ViewAt(time.Now(), false)})
	for v := range t.viewers {
		v.postPoll(msg)
	}
	t.armClockLocked(p)
	t.broadcastLocked()
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
	t.clock = time.AfterFunc(time.Until(next)+time.Millisecond, func() {
		if p, ok := t.hub.cat.Poll(t.id); ok {
			t.pollChanged(p)
		}
	})
}
