package tally

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pollcast/pollcast/votelog"
)

// consume reads the log after sequence after (from the start when after is
// 0) with an ordered consumer on filter (votelog.AllVotes or a shard's),
// asking for pull messages at a time. The messages arrive in the returned
// inbox until stop is called.
func (t *Tally) consume(ctx context.Context, after uint64, filter string, pull int) (in *inbox[jetstream.Msg], stop func(), err error) {
	cons, err := votelog.Reader(ctx, t.js, after, filter)
	if err != nil {
		return nil, nil, fmt.Errorf("tally: consumer: %w", err)
	}
	in = newInbox[jetstream.Msg](pull)
	hctx, unblock := context.WithCancel(ctx)
	cc, err := cons.Consume(func(m jetstream.Msg) { in.put(hctx, m) }, jetstream.PullMaxMessages(pull))
	if err != nil {
		unblock()
		return nil, nil, fmt.Errorf("tally: consume: %w", err)
	}
	return in, func() {
		unblock() // free a handler waiting for room before stopping
		cc.Stop()
	}, nil
}

// errNoMetadata is position's error for a message without a JetStream
// reply subject.
var errNoMetadata = errors.New("tally: not a JetStream message: no stream sequence in its reply subject")

// position returns the stream sequence of m and the messages left after it
// for its consumer. It reads them from the reply subject as m.Metadata
// does, without allocating.
func position(m jetstream.Msg) (seq, pending uint64, err error) {
	seq, pending, ok := ackPosition(m.Reply())
	if !ok {
		return 0, 0, errNoMetadata
	}
	return seq, pending, nil
}

// ackPosition parses the stream sequence and the pending count out of the
// reply subject of a message delivered by a JetStream consumer:
//
//	$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<tm>.<pending>
//	$JS.ACK.<domain>.<account>.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<tm>.<pending>[.<token>...]
//
// the old form and the new, as the client library reads them.
func ackPosition(reply string) (seq, pending uint64, ok bool) {
	rest, ok := strings.CutPrefix(reply, "$JS.ACK.")
	if !ok {
		return 0, 0, false
	}
	var tok [9]string
	n := 0
	for {
		dot := strings.IndexByte(rest, '.')
		if n < len(tok) {
			if dot < 0 {
				tok[n] = rest
			} else {
				tok[n] = rest[:dot]
			}
		}
		n++
		if dot < 0 {
			break
		}
		rest = rest[dot+1:]
	}
	var s, p string
	switch {
	case n == 7:
		s, p = tok[3], tok[6]
	case n >= 9:
		s, p = tok[5], tok[8]
	default:
		return 0, 0, false
	}
	seq, err1 := strconv.ParseUint(s, 10, 64)
	pending, err2 := strconv.ParseUint(p, 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return seq, pending, true
}
