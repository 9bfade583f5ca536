package tally

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// inbox hands messages from a consumer's handler to a worker a slice at a
// time: the worker takes whatever has arrived, up to max, without waiting
// for more. It costs a lock per message where a channel would cost a
// channel operation on each side; the handler blocks while the inbox is full.
type inbox struct {
	mu    sync.Mutex
	msgs  []jetstream.Msg
	max   int
	ready chan struct{} // a token when msgs became non-empty
	room  chan struct{} // a token when msgs was emptied
}

func newInbox(max int) *inbox {
	return &inbox{msgs: make([]jetstream.Msg, 0, max), max: max,
		ready: make(chan struct{}, 1), room: make(chan struct{}, 1)}
}

// put adds m, waiting while the inbox is full; it drops m once ctx ends.
func (in *inbox) put(ctx context.Context, m jetstream.Msg) {
	for {
		in.mu.Lock()
		if len(in.msgs) < in.max {
			in.msgs = append(in.msgs, m)
			first := len(in.msgs) == 1
			in.mu.Unlock()
			if first {
				signal(in.ready)
			}
			return
		}
		in.mu.Unlock()
		select {
		case <-in.room:
		case <-ctx.Done():
			return
		}
	}
}

// take waits until there are messages and returns all of them, giving the
// inbox spare (emptied) to fill next. It returns nil when ctx ends or,
// with idle > 0, when nothing arrives for that long.
func (in *inbox) take(ctx context.Context, spare []jetstream.Msg, idle time.Duration) []jetstream.Msg {
	var timeout <-chan time.Time
	if idle > 0 {
		t := time.NewTimer(idle)
		defer t.Stop()
		timeout = t.C
	}
	for {
		in.mu.Lock()
		if len(in.msgs) > 0 {
			got := in.msgs
			clear(spare) // let the messages taken last time go
			in.msgs = spare[:0]
			in.mu.Unlock()
			signal(in.room)
			return got
		}
		in.mu.Unlock()
		select {
		case <-in.ready:
		case <-ctx.Done():
			return nil
		case <-timeout:
			return nil
		}
	}
}

// signal leaves a token in a 1-buffered channel unless one is there.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
