// Package retry is the one backoff loop of the server's roles: a capped,
// doubling delay with jitter between attempts at something that will work
// again once a dependency is back (the log, Redis, ClickHouse).
package retry

import (
	"cmp"
	"context"
	"math/rand/v2"
	"time"
)

// Backoff is a delay that doubles from Min to Max with each Wait; the zero
// value waits 50 ms, then up to 5 s. A Backoff is used by one goroutine.
type Backoff struct {
	// Min is the first delay. Zero value means 50 ms.
	Min time.Duration
	// Max caps the delay. Zero value means 5 s.
	Max time.Duration

	next time.Duration
}

// Next returns the delay before the next attempt and doubles the one after
// it. The delay is jittered to between half and all of its nominal value,
// so processes that failed together do not retry in step.
func (b *Backoff) Next() time.Duration {
	lo, hi := cmp.Or(b.Min, 50*time.Millisecond), cmp.Or(b.Max, 5*time.Second)
	d := min(max(b.next, lo), hi)
	b.next = min(2*d, hi)
	return d/2 + rand.N(d/2+1)
}

// Reset makes the next delay Min again: call it after a success.
func (b *Backoff) Reset() { b.next = 0 }

// Wait sleeps for Next, or returns ctx's error if ctx ends first.
func (b *Backoff) Wait(ctx context.Context) error {
	return Sleep(ctx, b.Next())
}

// Sleep sleeps for d, or returns ctx's error if ctx ends first.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Do calls fn until it returns nil, a permanent error (see Permanent), or
// ctx ends, waiting b's delays between attempts. Before each wait it calls
// failed, when not nil, with the error and the delay (to log it). It
// returns nil, the permanent error unwrapped, or ctx's error.
func Do(ctx context.Context, b Backoff, fn func(context.Context) error, failed func(err error, wait time.Duration)) error {
	for {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		if p, ok := err.(permanent); ok {
			return p.err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d := b.Next()
		if failed != nil {
			failed(err, d)
		}
		if err := Sleep(ctx, d); err != nil {
			return err
		}
	}
}

// Permanent wraps an error that Do must return at once instead of retrying.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanent{err}
}

type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }
