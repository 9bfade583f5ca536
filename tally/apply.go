package tally

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/pollcast/pollcast/internal/retry"
	"github.com/pollcast/pollcast/votelog"
)

// commit applies the batch of b (see apply) and does what follows every
// applied batch, whoever read it: the shard's applied watermark and the
// metrics move on, the batch's polls join touched, to have their counts
// published, and b starts the next batch from the new watermark. It
// returns the votes counted. On an error, ErrFenced included, none of this
// happens and b is left as it was.
func (t *Tally) commit(ctx context.Context, b *batcher, touched *touchedPolls) (counted int, err error) {
	if err := t.apply(ctx, &b.batch); err != nil {
		return 0, err
	}
	counted = b.counted
	t.shards[b.batch.Shard].applied.Store(b.batch.Last)
	t.applied.Add(float64(counted))
	t.batches.Inc()
	for id := range b.batch.Polls {
		touched.add(id)
	}
	b.reset(b.batch.Last)
	return counted, nil
}

// apply stores a batch, retrying store errors (never dropping the batch)
// until ctx ends; a fence is returned at once.
func (t *Tally) apply(ctx context.Context, b *Batch) error {
	err := retry.Do(ctx, retry.Backoff{Min: 20 * time.Millisecond, Max: 2 * time.Second}, func(ctx context.Context) error {
		err := t.store.Apply(ctx, *b)
		if errors.Is(err, ErrFenced) {
			return retry.Permanent(err)
		}
		return err
	}, func(err error, wait time.Duration) {
		t.log.Warn("tally: apply failed; retrying", "shard", b.Shard, "err", err, "in", wait)
	})
	if err != nil && !errors.Is(err, ErrFenced) {
		return fmt.Errorf("tally: apply batch: %w", err)
	}
	return err
}

// touchedPolls gathers the polls whose counts changed, so that each is
// published once however many batches touched it: a shard worker
// publishes after every batch, a start-up read at most every
// catchUpPublishEvery and at the end.
type touchedPolls struct {
	ids       map[string]struct{}
	published time.Time
}

func newTouched() *touchedPolls {
	return &touchedPolls{ids: map[string]struct{}{}, published: time.Now()}
}

func (p *touchedPolls) add(id string) { p.ids[id] = struct{}{} }

// publish publishes the counts of the polls touched since the last time:
// now with now, otherwise only once catchUpPublishEvery has passed.
func (p *touchedPolls) publish(ctx context.Context, t *Tally, now bool) {
	if !now && time.Since(p.published) < catchUpPublishEvery {
		return
	}
	for id := range p.ids {
		t.publish(ctx, id)
	}
	clear(p.ids)
	p.published = time.Now()
}

// publish sends the counts of a poll to the realtime hubs, without waiting.
func (t *Tally) publish(ctx context.Context, pollID string) {
	c, err := t.store.Counts(ctx, pollID)
	if err != nil {
		t.log.Warn("tally: read counts to publish", "poll", pollID, "err", err)
		return
	}
	data, err := json.Marshal(c)
	if err != nil {
		t.log.Error("tally: encode counts", "poll", pollID, "err", err)
		return
	}
	if err := t.nc.Publish(votelog.ResultsSubject(pollID), data); err != nil {
		t.log.Warn("tally: publish counts", "poll", pollID, "err", err)
	}
}
