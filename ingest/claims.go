package ingest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pollcast/pollcast/internal/retry"
	"github.com/pollcast/pollcast/votelog"
)

// With a durable registry, an ingest node may die between the log's
// acknowledgement of a vote and the commit of its voter's claim (and its
// idempotency key's): the pending claim would expire and the voter could
// vote again. So the claim of a vote that reached the log is committed by
// whoever reads the log next: the ingest nodes sharing the registry read
// the log together through one durable consumer (each message goes to one
// of them, and again to another if it is not acknowledged), and record the
// voters and keys of every vote, as a rebuild does. Recording is
// idempotent: a claim committed by its own node is left as it is.
//
// At start, a node admits votes only once the consumer has passed the end
// of the log as it was: every vote stored before, by a node that died or
// not, has its claim committed by then.

// ClaimsConsumer is the durable consumer of the log through which ingest
// nodes commit the claims of stored votes.
const ClaimsConsumer = "pollcast_ingest_claims"

// claimsAckWait is how long a message given to a node that died waits
// before it goes to another.
const claimsAckWait = 10 * time.Second

// startClaims starts the reader of the log that commits claims, and waits
// until it has passed the end of the log as it is now.
func (s *Service) startClaims(ctx context.Context) error {
	last, err := votelog.LastSeq(ctx, s.js)
	if err != nil {
		return fmt.Errorf("ingest: claims reader: %w", err)
	}
	cons, err := s.js.CreateOrUpdateConsumer(ctx, votelog.StreamName, jetstream.ConsumerConfig{
		Durable: ClaimsConsumer, Description: "ingest: commits the voter claims of stored votes",
		FilterSubject: votelog.AllVotes, DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: claimsAckWait, MaxAckPending: 64 << 10,
	})
	if err != nil {
		return fmt.Errorf("ingest: claims reader: %w", err)
	}
	s.claimsOnce.Do(func() { s.wg.Go(func() { s.commitClaims(cons) }) })
	b := retry.Backoff{Min: 10 * time.Millisecond, Max: 500 * time.Millisecond}
	for {
		info, err := cons.Info(ctx)
		if err != nil {
			return fmt.Errorf("ingest: claims reader: %w", err)
		}
		if info.AckFloor.Stream >= last {
			return nil
		}
		if err := b.Wait(ctx); err != nil {
			return fmt.Errorf("ingest: claims reader: %w", err)
		}
	}
}

// commitClaims records the voters and keys of the messages cons gives this
// node, a batch at a time, and acknowledges each message once they are
// recorded, until the service closes.
func (s *Service) commitClaims(cons jetstream.Consumer) {
	ctx := s.life
	b := voterBatch{s: s, vs: make([]voterVote, 0, voterBatchLen)}
	wait := retry.Backoff{}
	var msgs []jetstream.Msg
	for ctx.Err() == nil {
		fctx, cancel := context.WithTimeout(ctx, time.Second)
		batch, err := cons.Fetch(voterBatchLen, jetstream.FetchContext(fctx))
		if err == nil {
			msgs = msgs[:0]
			for msg := range batch.Messages() {
				b.add(msg.Data())
				msgs = append(msgs, msg)
			}
			err = batch.Error()
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoMessages) {
				err = nil
			}
			if ferr := b.flush(ctx); ferr != nil {
				err = ferr
				b.vs, b.keys = b.vs[:0], b.keys[:0]
				msgs = msgs[:0] // not acknowledged: given again after claimsAckWait
			}
			for _, msg := range msgs {
				_ = msg.Ack()
			}
		}
		cancel()
		if err != nil && ctx.Err() == nil {
			s.cfg.Logger.Warn("ingest: claims reader", "err", err)
			_ = wait.Wait(ctx)
			continue
		}
		wait.Reset()
	}
}
