package realtime

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pollcast/pollcast/poll"
)

// closeReason says why the hub ends a connection.
type closeReason int

const (
	closeClient   closeReason = iota + 1 // the client went away
	closeShutdown                        // the hub is closing
	closeGone                            // the poll was deleted
	closeSlow                            // the client does not keep up or does not answer
)

// viewer is one live connection's mailbox. The hub posts into it without
// ever blocking: the newest state replaces an unsent one.
type viewer struct {
	topic   *topic
	owner   bool
	voted   atomic.Bool
	state   atomic.Pointer[outMsg] // newest results or hidden message not yet written
	pollMsg atomic.Pointer[outMsg] // newest poll message not yet written
	wake    chan struct{}          // 1-buffered: "something was posted"
	replies chan *outMsg           // answers to this client's own messages, in order

	closeOnce sync.Once
	closed    chan struct{}
	reason    closeReason
}

const maxPendingReplies = 32

func newViewer(v Viewer) *viewer {
	vw := &viewer{owner: v.Owner, wake: make(chan struct{}, 1),
		replies: make(chan *outMsg, maxPendingReplies), closed: make(chan struct{})}
	vw.voted.Store(v.Voted)
	return vw
}

func (v *viewer) seen() poll.Viewer {
	return poll.Viewer{Owner: v.owner, Voted: v.voted.Load()}
}

func (v *viewer) signal() {
	select {
	case v.wake <- struct{}{}:
	default:
	}
}

func (v *viewer) post(m *outMsg) {
	v.state.Store(m)
	v.signal()
}

func (v *viewer) postPoll(m *outMsg) {
	v.pollMsg.Store(m)
	v.signal()
}

// reply queues an answer to the client; a client that lets answers pile
// up is too slow and is closed.
func (v *viewer) reply(m *outMsg) {
	select {
	case v.replies <- m:
	default:
		v.close(closeSlow)
	}
}

func (v *viewer) close(r closeReason) {
	v.closeOnce.Do(func() {
		v.reason = r
		close(v.closed)
	})
}

// writeLoop writes what is posted to the viewer until it is closed or ctx
// ends. write must honour its own deadline. tick, if not nil, calls onTick.
func (h *Hub) writeLoop(ctx context.Context, v *viewer, write func(*outMsg) error, tick <-chan time.Time, onTick func() error) closeReason {
	var lastState *outMsg
	send := func(m *outMsg) bool {
		if err := write(m); err != nil {
			v.close(closeSlow)
			return false
		}
		h.m.sent.Inc()
		return true
	}
	for {
		select {
		case <-v.closed:
			return v.reason
		case <-ctx.Done():
			return closeClient
		case m := <-v.replies:
			if !send(m) {
				return closeSlow
			}
		case <-v.wake:
			// Replies queued before this wake-up go first: a voter hears
			// "202" before the results it unlocked.
			for drained := false; !drained; {
				select {
				case m := <-v.replies:
					if !send(m) {
						return closeSlow
					}
				default:
					drained = true
				}
			}
			if m := v.pollMsg.Swap(nil); m != nil && !send(m) {
				return closeSlow
			}
			m := v.state.Swap(nil)
			if m == nil || (m == hiddenMsg && lastState == hiddenMsg) {
				continue
			}
			if !send(m) {
				return closeSlow
			}
			lastState = m
		case <-tick:
			if err := onTick(); err != nil {
				v.close(closeSlow)
				return closeSlow
			}
		}
	}
}
