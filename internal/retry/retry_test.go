package retry

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestBackoffDoublesWithinBoundsAndResets(t *testing.T) {
	b := Backoff{Min: 10 * time.Millisecond, Max: 80 * time.Millisecond}
	for i, nominal := range []time.Duration{10, 20, 40, 80, 80, 80} {
		nominal *= time.Millisecond
		d := b.Next()
		if d < nominal/2 || d > nominal {
			t.Fatalf("attempt %d: delay %v, want within [%v, %v]", i, d, nominal/2, nominal)
		}
	}
	b.Reset()
	if d := b.Next(); d > 10*time.Millisecond {
		t.Fatalf("after Reset: delay %v, want at most Min", d)
	}
}

func TestDoRetriesUntilSuccess(t *testing.T) {
	calls, failures := 0, 0
	err := Do(context.Background(), Backoff{Min: time.Millisecond, Max: time.Millisecond}, func(context.Context) error {
		calls++
		if calls < 3 {
			return errors.New("down")
		}
		return nil
	}, func(error, time.Duration) { failures++ })
	if err != nil || calls != 3 || failures != 2 {
		t.Fatalf("Do = %v after %d calls and %d failures; want nil after 3 and 2", err, calls, failures)
	}
}

func TestDoStopsOnPermanentAndOnContext(t *testing.T) {
	stop := errors.New("bad config")
	err := Do(context.Background(), Backoff{}, func(context.Context) error { return Permanent(stop) }, nil)
	if !errors.Is(err, stop) {
		t.Fatalf("Do = %v, want the permanent error", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	err = Do(ctx, Backoff{Min: time.Hour}, func(context.Context) error {
		calls++
		cancel()
		return errors.New("down")
	}, nil)
	if !errors.Is(err, context.Canceled) || calls != 1 {
		t.Fatalf("Do = %v after %d calls, want context.Canceled after 1", err, calls)
	}
}
