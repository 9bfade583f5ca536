package tally

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func TestInbox(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	in := newInbox[jetstream.Msg](3)
	for range 3 {
		in.put(ctx, nil)
	}
	// Full: a fourth put waits for the worker to take.
	put := make(chan struct{})
	go func() {
		in.put(ctx, nil)
		close(put)
	}()
	got := in.take(ctx, nil, 0)
	if len(got) != 3 {
		t.Fatalf("took %d messages, want 3", len(got))
	}
	<-put
	if got = in.take(ctx, got, 0); len(got) != 1 {
		t.Fatalf("took %d messages, want 1", len(got))
	}
	// Nothing there: take waits at most idle.
	if got := in.take(ctx, got, 10*time.Millisecond); got != nil {
		t.Fatalf("idle take returned %d messages", len(got))
	}
	// A put blocked on a full inbox gives up when its context ends.
	for range 3 {
		in.put(ctx, nil)
	}
	pctx, stop := context.WithCancel(ctx)
	stop()
	in.put(pctx, nil)
	if got := in.take(ctx, nil, 0); len(got) != 3 {
		t.Fatalf("took %d messages, want 3", len(got))
	}
	cancel()
	if got := in.take(ctx, nil, 0); got != nil {
		t.Fatal("take after cancel returned messages")
	}
}

// TestInboxGather: after gather, take waits for that many messages, or for
// the linger once some arrived, and never returns an empty slice.
func TestInboxGather(t *testing.T) {
	ctx := context.Background()
	in := newInbox[jetstream.Msg](10)
	in.gather(4, time.Hour) // a take that waited for the linger would time the test out
	for range 4 {
		in.put(ctx, nil)
	}
	if got := in.take(ctx, nil, 0); len(got) != 4 {
		t.Fatalf("took %d messages, want 4", len(got))
	}
	in.gather(4, time.Millisecond)
	in.put(ctx, nil)
	if got := in.take(ctx, nil, 0); len(got) != 1 {
		t.Fatalf("took %d messages after the linger, want 1", len(got))
	}
	// Nothing at all: the linger does not start, idle ends the wait.
	if got := in.take(ctx, nil, 20*time.Millisecond); got != nil {
		t.Fatalf("idle take returned %d messages", len(got))
	}
	in.gather(100, time.Hour) // at most max: 10 are enough
	for range 10 {
		in.put(ctx, nil)
	}
	if got := in.take(ctx, nil, 0); len(got) != 10 {
		t.Fatalf("took %d messages, want 10", len(got))
	}
}
