package ingest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pollcast/pollcast/internal/retry"
	"github.com/pollcast/pollcast/poll"
	"github.com/pollcast/pollcast/votelog"
)

// A message whose acknowledgement does not come in time (a timeout, a
// connection lost) may or may not be stored: its outcome is unknown, not a
// refusal. resolve learns it, so that a 503 always means "not stored":
//
//  1. During the first half of the stream's duplicate window, it publishes
//     the same bytes again with the same message ID. JetStream answers a
//     message it already holds with the original sequence (Duplicate), or
//     stores it now: either way the votes are stored, once. An error reply
//     is a refusal: the log checks message IDs before its limits, so it
//     would have answered Duplicate had the first attempt been stored.
//  2. Only the first half: a republish that reaches the log late (stuck in
//     a slow server) must still meet the first attempt's ID in the window.
//  3. Past it, the log has answered nothing for half a window. resolve
//     waits until the window has passed since the first attempt (any copy
//     still on its way has landed or is lost by then), and looks for the
//     message's ID among the messages of its subject stored since it was
//     sent, until the log answers or the service stops.
//
// The voters' claims are held meanwhile, so nobody votes twice while a
// vote may be landing.

// errPending answers a vote whose outcome was not known when its client
// stopped waiting (its context ended) or the service stopped. It is never
// a 503: the vote may be stored. The vote is settled in the background.
var errPending = &poll.Error{Code: poll.CodeInternal,
	Detail: "the vote's outcome was not known in time; retry with the same idempotency_key to learn it"}

// refused reports whether the log's answer to a first attempt says the
// message was not stored: an error reply, or no stream to take it.
func refused(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) || errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders)
}

// newMsgID returns a message ID for a message that has none of its own.
func newMsgID() string {
	var id voteID
	copy(id[:], poll.NewIDBytes(len(id)))
	return id.String()
}

// clockSkew is how far the log's clock may be behind ours when the
// fallback of resolve looks for a message by the time it was stored.
const clockSkew = time.Minute

// window returns the stream's duplicate window, read at Rebuild.
func (s *Service) window() time.Duration {
	if w := time.Duration(s.dupWindow.Load()); w > 0 {
		return w
	}
	return votelog.DefaultDuplicateWindow
}

// readWindow reads the stream's duplicate window.
func (s *Service) readWindow(ctx context.Context) error {
	st, err := s.js.Stream(ctx, votelog.StreamName)
	if err != nil {
		return fmt.Errorf("ingest: log: %w", err)
	}
	s.dupWindow.Store(int64(st.CachedInfo().Config.Duplicates))
	return nil
}

// resolve learns the outcome of a message whose first attempt got no
// answer (why), as the comment above says, and closes a.done.
func (s *Service) resolve(a *logAck, why error) {
	defer close(a.done)
	s.m.unknown.Inc()
	s.cfg.Logger.Warn("ingest: no answer from the vote log; learning the outcome", "err", why, "msg_id", a.msgID)
	until := a.first.Add(s.window() / 2)
	b := retry.Backoff{Min: 50 * time.Millisecond, Max: time.Second}
	for time.Now().Before(until) {
		if s.nc.Status() == nats.CONNECTED { // never into the reconnect buffer: it may land any time later
			ctx, cancel := context.WithTimeout(s.life, s.cfg.PublishTimeout)
			_, err := s.js.PublishMsg(ctx, a.msg(), jetstream.WithMsgID(a.msgID))
			cancel()
			var apiErr *jetstream.APIError
			switch {
			case err == nil:
				a.stored = true
				return
			case errors.As(err, &apiErr):
				a.err = err
				return
			}
		}
		if retry.Sleep(s.life, min(b.Next(), time.Until(until))) != nil {
			a.unknown = true
			return
		}
	}
	if retry.Sleep(s.life, time.Until(a.first.Add(s.window()))) != nil {
		a.unknown = true
		return
	}
	err := retry.Do(s.life, b, func(ctx context.Context) error {
		found, err := s.findInLog(ctx, a)
		a.stored = found
		return err
	}, nil)
	if err != nil {
		a.unknown = true
		return
	}
	if !a.stored {
		a.err = errors.New("ingest: not in the log after its duplicate window")
	}
}

// findInLog reports whether the log holds a's message: one with its ID on
// its subject, stored since it was first sent.
func (s *Service) findInLog(ctx context.Context, a *logAck) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	last, err := votelog.LastSeq(ctx, s.js)
	if err != nil {
		return false, err
	}
	from := a.first.Add(-clockSkew)
	cons, err := s.js.OrderedConsumer(ctx, votelog.StreamName, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{a.subject}, DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &from,
		HeadersOnly: true,
	})
	if err != nil {
		return false, fmt.Errorf("ingest: find message: %w", err)
	}
	for {
		msg, err := cons.Next(jetstream.FetchMaxWait(time.Second))
		if errors.Is(err, jetstream.ErrNoMessages) || errors.Is(err, nats.ErrTimeout) {
			return false, nil // nothing more on the subject
		}
		if err != nil {
			return false, fmt.Errorf("ingest: find message: %w", err)
		}
		if msg.Headers().Get(jetstream.MsgIDHeader) == a.msgID {
			return true, nil
		}
		meta, err := msg.Metadata()
		if err != nil {
			return false, fmt.Errorf("ingest: find message: %w", err)
		}
		if meta.NumPending == 0 || meta.Sequence.Stream >= last {
			return false, nil
		}
	}
}
