package tally

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pollcast/pollcast/internal/testsvc"
	"github.com/pollcast/pollcast/votelog"
)

func TestAckPosition(t *testing.T) {
	tests := []struct {
		reply        string
		seq, pending uint64
		ok           bool
	}{
		{"$JS.ACK.VOTES.c1.1.42.7.1764480000000000000.99", 42, 99, true},
		{"$JS.ACK._.acchash.VOTES.c1.1.42.7.1764480000000000000.99.tok", 42, 99, true},
		{"$JS.ACK.hub.acchash.VOTES.c1.1.18446744073709551615.7.1.0", 18446744073709551615, 0, true},
		{"$JS.ACK.hub.acchash.VOTES.c1.1.5.7.1.3.tok.more", 5, 3, true},
		{"", 0, 0, false},
		{"_INBOX.abc", 0, 0, false},
		{"$JS.ACK.VOTES.c1.1.42.7.1764480000000000000", 0, 0, false},         // 8 tokens
		{"$JS.ACK.d.h.VOTES.c1.1.42.7.1764480000000000000.99x", 0, 0, false}, // not a number
		{"$JS.ACK.VOTES.c1.1.-4.7.1.9", 0, 0, false},
		{"$JS.ACK.VOTES.c1.1..7.1.9", 0, 0, false},
		{"$JS.ACK.VOTES.c1.1.18446744073709551616.7.1.9", 0, 0, false}, // overflows
	}
	for _, tt := range tests {
		seq, pending, ok := ackPosition(tt.reply)
		if seq != tt.seq || pending != tt.pending || ok != tt.ok {
			t.Errorf("ackPosition(%q) = %d, %d, %v; want %d, %d, %v", tt.reply, seq, pending, ok, tt.seq, tt.pending, tt.ok)
		}
	}
	if a := testing.AllocsPerRun(100, func() { ackPosition(tests[1].reply) }); a != 0 {
		t.Fatalf("ackPosition allocates %v times", a)
	}
}

// TestPositionAgreesWithMetadata: position reads what the client library's
// Metadata reads from the messages of a real consumer.
func TestPositionAgreesWithMetadata(t *testing.T) {
	ctx := context.Background()
	l := testsvc.StartLog(t)
	for i := range 5 {
		if _, err := l.JS.Publish(ctx, votelog.VoteSubject(i%2, "p"), []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	cons, err := l.JS.OrderedConsumer(ctx, votelog.StreamName, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		meta, err := m.Metadata()
		if err != nil {
			t.Fatal(err)
		}
		seq, pending, err := position(m)
		if err != nil || seq != meta.Sequence.Stream || pending != meta.NumPending || seq != uint64(i+1) {
			t.Fatalf("message %d: position = %d, %d, %v; Metadata: %d, %d", i, seq, pending, err, meta.Sequence.Stream, meta.NumPending)
		}
	}
}
