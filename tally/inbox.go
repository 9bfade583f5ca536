package tally

import (
	"context"
	"sync"
	"time"
)

// inbox hands messages from a subscription's handler to a worker a slice
// at a time: the worker takes whatever has arrived, up to max, without waiting
// for more, or, after gather, waits for a fuller slice. It costs a lock per
// message where a channel would cost a channel operation on each side; the
// handler blocks while the inbox is full.
type inbox[M any] struct {
	mu     sync.Mutex
	msgs   []M
	max    int
	min    int           // take waits for this many messages...
	linger time.Duration // ...or this long after the first one
	ready  chan struct{} // a token when msgs became non-empty or reached min
	room   chan struct{} // a token when msgs was emptied
}

func newInbox[M any](max int) *inbox[M] {
	return &inbox[M]{msgs: make([]M, 0, max), max: max, min: 1,
		ready: make(chan struct{}, 1), room: make(chan struct{}, 1)}
}

// gather makes take wait until the inbox holds least messages (at most max),
// or linger has passed since the first arrived, rather than return the
// first ones at once: a reader that keeps up with the log then handles
// thousands of messages at a time instead of a few.
func (in *inbox[M]) gather(least int, linger time.Duration) {
	in.mu.Lock()
	in.min, in.linger = max(1, min(least, in.max)), linger
	in.mu.Unlock()
}

// put adds m, waiting while the inbox is full; it drops m once ctx ends.
func (in *inbox[M]) put(ctx context.Context, m M) {
	for {
		in.mu.Lock()
		if len(in.msgs) < in.max {
			in.msgs = append(in.msgs, m)
			n := len(in.msgs)
			wake := n == 1 || n == in.min
			in.mu.Unlock()
			if wake {
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

// take waits until there are messages (see gather) and returns all of
// them, giving the inbox spare (emptied) to fill next. It returns nil when
// ctx ends or, with idle > 0, when nothing arrives for that long.
func (in *inbox[M]) take(ctx context.Context, spare []M, idle time.Duration) []M {
	var timeout, lingered <-chan time.Time
	if idle > 0 {
		t := time.NewTimer(idle)
		defer t.Stop()
		timeout = t.C
	}
	waited := false // lingered long enough
	for {
		in.mu.Lock()
		if n := len(in.msgs); n > 0 && (n >= in.min || waited) {
			got := in.msgs
			clear(spare) // let the messages taken last time go
			in.msgs = spare[:0]
			in.mu.Unlock()
			signal(in.room)
			return got
		}
		if len(in.msgs) > 0 && lingered == nil {
			t := time.NewTimer(in.linger)
			defer t.Stop()
			lingered = t.C
		}
		in.mu.Unlock()
		select {
		case <-in.ready:
		case <-lingered:
			waited = true
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
