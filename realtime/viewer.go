package realtime

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pollcast/pollcast/poll"
)

// closeReason says why the hub ends a connection.
type closeReason int

const (
	closeClient   closeReason = iota + 1 // the client went away or broke the protocol
	closeShutdown                        // the hub is closing
	closeGone                            // the poll was deleted
	closeSlow                            // the client does not keep up or does not answer
)

// viewer is one live connection's mailbox. The hub posts into it without
// ever blocking: the newest state replaces an unsent one. Only the
// connection's writer takes messages out.
type viewer struct {
	topic   *topic
	lane    *lane // under topic.mu
	owner   bool
	voted   atomic.Bool
	state   atomic.Pointer[outMsg] // newest results or hidden message not yet written
	pollMsg atomic.Pointer[outMsg] // newest poll message not yet written
	wake    chan struct{}          // 1-buffered: "something was posted" (writers with a loop)
	replies chan *outMsg           // answers to this client's own messages, in order
	// kick, when set (before the viewer joins, never changed), is called
	// instead of waking a loop: on every post, reply and close. WebSocket
	// viewers use it to write from short-lived goroutines.
	kick func()

	leaveOnce sync.Once
	closeOnce sync.Once
	closed    chan struct{}
	reason    closeReason // written once, before closed is closed
	why       error       // what made a slow viewer slow, for the log
}

// maxPendingReplies bounds the answers waiting for the writer; a client
// that lets more pile up is closed, so no answer is ever dropped silently.
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
	if v.kick != nil {
		v.kick()
		return
	}
	select {
	case v.wake <- struct{}{}:
	default: // a wake-up is already pending: the writer will see this post too
	}
}

// post replaces the viewer's pending results/hidden state.
func (v *viewer) post(m *outMsg) {
	v.state.Store(m)
	v.signal()
}

// postPoll replaces the viewer's pending poll message.
func (v *viewer) postPoll(m *outMsg) {
	v.pollMsg.Store(m)
	v.signal()
}

// reply queues answers to the client, to be written together; a client
// that lets answers pile up is too slow and is closed.
func (v *viewer) reply(ms ...*outMsg) {
	for _, m := range ms {
		select {
		case v.replies <- m:
		default:
			v.slow(errors.New("too many answers waiting to be written"))
			return
		}
	}
	if v.kick != nil {
		v.kick()
	}
}

func (v *viewer) close(r closeReason) {
	v.closeOnce.Do(func() {
		v.reason = r
		close(v.closed)
	})
	if v.kick != nil {
		v.kick()
	}
}

// slow closes the viewer as too slow, unless it was closed already.
func (v *viewer) slow(why error) {
	v.closeOnce.Do(func() {
		v.reason, v.why = closeSlow, why
		close(v.closed)
	})
	if v.kick != nil {
		v.kick()
	}
}

// writePending writes what was posted to v since the last call, in order,
// through send, which reports false once the viewer is closed. last is the
// state the previous call wrote.
//
// It takes the state, then the poll message, then the replies, and writes
// them in the reverse order. Posters queue a reply before the state it
// unlocks, and a poll message before the results it changes, so a voter
// hears "202" before the results, and everyone gets a poll change before
// results that depend on it.
func (v *viewer) writePending(send func(*outMsg) bool, last **outMsg) bool {
	state := v.state.Swap(nil)
	pm := v.pollMsg.Swap(nil)
	for drained := false; !drained; {
		select {
		case m := <-v.replies:
			if !send(m) {
				return false
			}
		default:
			drained = true
		}
	}
	if pm != nil && !send(pm) {
		return false
	}
	if state == nil || (state == hiddenMsg && *last == hiddenMsg) {
		return true
	}
	if !send(state) {
		return false
	}
	*last = state
	return true
}

// sender returns the send function of writePending for a connection's
// write function: a failed write closes the viewer as slow.
func (h *Hub) sender(v *viewer, write func(*outMsg) error) func(*outMsg) bool {
	return func(m *outMsg) bool {
		if err := write(m); err != nil {
			v.slow(fmt.Errorf("write: %w", err))
			return false
		}
		h.m.sent.Inc()
		return true
	}
}

// writeLoop is the only writer of a connection whose handler stays (SSE):
// it writes what is posted to the viewer until the viewer is closed or ctx ends, and returns why. write
// must honour its own deadline; an error closes the viewer as slow. tick,
// if not nil, calls onTick (SSE keep-alives).
func (h *Hub) writeLoop(ctx context.Context, v *viewer, write func(*outMsg) error, tick <-chan time.Time, onTick func() error) closeReason {
	var lastState *outMsg
	send := h.sender(v, write)
	for {
		select {
		case <-v.closed:
			if v.reason == closeGone {
				// The poll was deleted: say so before closing normally.
				if m := v.pollMsg.Swap(nil); m != nil {
					send(m)
				}
			}
			return v.reason
		case <-ctx.Done():
			v.close(closeClient)
			return v.reason
		case m := <-v.replies:
			if !send(m) {
				return v.reason
			}
		case <-v.wake:
			if !v.writePending(send, &lastState) {
				return v.reason
			}
		case <-tick:
			if err := onTick(); err != nil {
				v.slow(fmt.Errorf("keep-alive: %w", err))
				return v.reason
			}
		}
	}
}
