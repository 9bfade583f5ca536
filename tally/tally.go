package tally

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pollcast/pollcast/poll"
	"github.com/pollcast/pollcast/votelog"
)

// Config configures New.
type Config struct {
	// Shards is the number of shards, one worker each. It must match
	// ingest's. Zero value means votelog.DefaultShards.
	Shards int
	// BatchSize caps the votes applied at once. Zero value means 4096.
	BatchSize int
	// Logger receives operational messages. Zero value means slog.Default().
	Logger *slog.Logger
	// Registerer receives the tally metrics. Zero value means no metrics.
	Registerer prometheus.Registerer
	// Leases, when set, is a key-value bucket with a TTL through which
	// several tally processes share the shards: a worker folds a shard only
	// while it holds the shard's lease, renews it every LeaseRenew, and a
	// shard whose holder died is taken over once the bucket's TTL expires
	// its lease. Fencing by the watermark still guards a holder that wakes
	// up late. Zero value means this process folds every shard.
	Leases jetstream.KeyValue
	// LeaseRenew is how often a held lease is renewed and a free one tried.
	// It must be well under the bucket's TTL. Zero value means 1s.
	LeaseRenew time.Duration
	// Owner names this process in the leases. Zero value means a random ID.
	Owner string
}

// Tally runs the shard workers.
type Tally struct {
	js    jetstream.JetStream
	nc    *nats.Conn
	store Store
	cat   *poll.Catalog
	cfg   Config
	log   *slog.Logger

	shards  []*shardState
	applied prometheus.Counter
	batches prometheus.Counter

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type shardState struct {
	applied atomic.Uint64 // watermark this worker knows is stored
	pending atomic.Uint64 // votes of the shard still in the log after the last one read
}

// New returns a tally over the VOTES stream of js, folding into store and
// publishing counts through nc. Call Start to run it.
func New(js jetstream.JetStream, nc *nats.Conn, store Store, cat *poll.Catalog, cfg Config) (*Tally, error) {
	cfg.Shards = cmp.Or(cfg.Shards, votelog.DefaultShards)
	cfg.BatchSize = cmp.Or(cfg.BatchSize, 4096)
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	cfg.LeaseRenew = cmp.Or(cfg.LeaseRenew, time.Second)
	cfg.Owner = cmp.Or(cfg.Owner, poll.NewID(9))
	if cfg.Shards < 1 || cfg.BatchSize < 1 {
		return nil, errors.New("tally: shards and batch size must be positive")
	}
	t := &Tally{js: js, nc: nc, store: store, cat: cat, cfg: cfg, log: cfg.Logger,
		applied: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pollcast_tally_votes_applied_total", Help: "Votes folded into the tally store.",
		}),
		batches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pollcast_tally_batches_applied_total", Help: "Batches applied to the tally store.",
		}),
		cancel: func() {},
	}
	for range cfg.Shards {
		t.shards = append(t.shards, &shardState{})
	}
	if cfg.Registerer != nil {
		lag := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "pollcast_tally_lag_votes", Help: "Votes in the log not yet folded into the tally store.",
		}, func() float64 { return float64(t.Lag()) })
		for _, c := range []prometheus.Collector{t.applied, t.batches, lag} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("tally: metrics: %w", err)
			}
		}
	}
	return t, nil
}

// Start starts one worker per shard and returns at once.
func (t *Tally) Start(ctx context.Context) error {
	wctx, cancel := context.WithCancel(context.Background())
	t.cancel = cancel
	for shard := range t.shards {
		t.wg.Go(func() { t.runShard(wctx, shard) })
	}
	return nil
}

// Close stops every worker and waits for them.
func (t *Tally) Close() {
	t.cancel()
	t.wg.Wait()
}

// Lag returns the number of votes in the log not yet applied, as of the
// last vote each worker read.
func (t *Tally) Lag() uint64 {
	var n uint64
	for _, s := range t.shards {
		n += s.pending.Load()
	}
	return n
}

// WaitCaughtUp blocks until every shard has applied everything that was in
// the log when it was called.
func (t *Tally) WaitCaughtUp(ctx context.Context) error {
	stream, err := t.js.Stream(ctx, votelog.StreamName)
	if err != nil {
		return fmt.Errorf("tally: stream: %w", err)
	}
	targets := make([]uint64, len(t.shards))
	for shard := range t.shards {
		m, err := stream.GetLastMsgForSubject(ctx, votelog.ShardFilter(shard))
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
		case err != nil:
			return fmt.Errorf("tally: last vote of shard %d: %w", shard, err)
		default:
			targets[shard] = m.Sequence
		}
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		done := true
		for shard, s := range t.shards {
			done = done && s.applied.Load() >= targets[shard]
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("tally: catching up: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// runShard follows one shard until ctx ends, starting over from the
// store's watermark after a fence or an error; with leases, only while it
// holds the shard's lease.
func (t *Tally) runShard(ctx context.Context, shard int) {
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		var err error
		if t.cfg.Leases != nil {
			err = t.followLeased(ctx, shard)
		} else {
			err = t.follow(ctx, shard)
		}
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, ErrFenced) {
			t.log.Warn("tally: shard fenced off; reloading its watermark", "shard", shard)
			backoff = 50 * time.Millisecond
			continue
		}
		t.log.Warn("tally: shard worker restarting", "shard", shard, "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// followLeased waits for the shard's lease, then follows the shard while
// renewing it; it returns when the lease is lost or ctx ends.
func (t *Tally) followLeased(ctx context.Context, shard int) error {
	key := "shard-" + strconv.Itoa(shard)
	owner := []byte(t.cfg.Owner)
	tick := time.NewTicker(t.cfg.LeaseRenew)
	defer tick.Stop()
	var rev uint64
	for {
		var err error
		if rev, err = t.cfg.Leases.Create(ctx, key, owner); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	t.log.Info("tally: took the lease of a shard", "shard", shard, "owner", t.cfg.Owner)
	lctx, lost := context.WithCancel(ctx)
	defer lost()
	var renewer sync.WaitGroup
	renewer.Go(func() {
		defer lost()
		for {
			select {
			case <-lctx.Done():
				return
			case <-tick.C:
			}
			r, err := t.cfg.Leases.Update(lctx, key, owner, rev)
			if err != nil {
				if lctx.Err() == nil {
					t.log.Warn("tally: lost the lease of a shard", "shard", shard, "err", err)
				}
				return
			}
			rev = r
		}
	})
	err := t.follow(lctx, shard)
	lost()
	renewer.Wait()
	// Hand the shard over at once rather than after the TTL.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	_ = t.cfg.Leases.Delete(dctx, key, jetstream.LastRevision(rev))
	cancel()
	if ctx.Err() == nil && lctx.Err() != nil {
		return errors.New("tally: lease lost")
	}
	return err
}

// follow reads the shard from its watermark on and applies batches until
// ctx ends or something fails.
func (t *Tally) follow(ctx context.Context, shard int) error {
	mark, err := t.store.Watermark(ctx, shard)
	if err != nil {
		return fmt.Errorf("tally: watermark: %w", err)
	}
	t.shards[shard].applied.Store(mark)
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{votelog.ShardFilter(shard)}}
	if mark == 0 {
		cfg.DeliverPolicy = jetstream.DeliverAllPolicy
	} else {
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = mark + 1
	}
	cons, err := t.js.OrderedConsumer(ctx, votelog.StreamName, cfg)
	if err != nil {
		return fmt.Errorf("tally: consumer: %w", err)
	}
	msgs := make(chan jetstream.Msg, t.cfg.BatchSize)
	fctx, stop := context.WithCancel(ctx)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case msgs <- m:
		case <-fctx.Done():
		}
	}, jetstream.PullMaxMessages(t.cfg.BatchSize))
	if err != nil {
		stop()
		return fmt.Errorf("tally: consume: %w", err)
	}
	defer func() {
		stop() // unblock a handler waiting on msgs before stopping the consumer
		cc.Stop()
	}()

	b := newBatcher(shard)
	for {
		var first jetstream.Msg
		select {
		case <-ctx.Done():
			return ctx.Err()
		case first = <-msgs:
		}
		b.reset(mark)
		b.add(first, t)
	fill:
		for b.n < t.cfg.BatchSize {
			select {
			case m := <-msgs:
				b.add(m, t)
			default:
				break fill
			}
		}
		if b.batch.Last <= mark {
			continue // only redeliveries at or below the watermark
		}
		if err := t.apply(ctx, &b.batch); err != nil {
			return err
		}
		mark = b.batch.Last
		t.shards[shard].applied.Store(mark)
		t.shards[shard].pending.Store(b.pending)
		t.applied.Add(float64(b.counted))
		t.batches.Inc()
		t.publish(b.batch.Polls)
	}
}

// apply stores a batch, retrying store errors (never dropping the batch)
// until ctx ends; a fence is returned at once.
func (t *Tally) apply(ctx context.Context, b *Batch) error {
	backoff := 20 * time.Millisecond
	for {
		err := t.store.Apply(ctx, *b)
		if err == nil || errors.Is(err, ErrFenced) {
			return err
		}
		t.log.Warn("tally: apply failed; retrying", "shard", b.Shard, "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// publish sends the new counts of every touched poll to the realtime hubs.
func (t *Tally) publish(polls map[string]*PollDelta) {
	for id := range polls {
		c, err := t.store.Counts(context.Background(), id)
		if err != nil {
			t.log.Warn("tally: read counts to publish", "poll", id, "err", err)
			continue
		}
		data, err := json.Marshal(c)
		if err != nil {
			continue
		}
		if err := t.nc.Publish(votelog.ResultsSubject(id), data); err != nil {
			t.log.Warn("tally: publish counts", "poll", id, "err", err)
		}
	}
}

// batcher pre-aggregates the votes of one batch. Its maps are reused from
// batch to batch.
type batcher struct {
	batch   Batch
	n       int    // messages in the batch
	counted int    // votes counted in the batch
	pending uint64 // votes of the shard left in the log after the last message
	spare   []*PollDelta
}

func newBatcher(shard int) *batcher {
	return &batcher{batch: Batch{Shard: shard, Polls: map[string]*PollDelta{}}}
}

func (b *batcher) reset(mark uint64) {
	for id, d := range b.batch.Polls {
		clear(d.Options)
		d.Voters = d.Voters[:0]
		d.Total, d.Anonymous, d.At = 0, 0, time.Time{}
		b.spare = append(b.spare, d)
		delete(b.batch.Polls, id)
	}
	b.batch.Prev, b.batch.Last = mark, mark
	b.n, b.counted = 0, 0
}

// add folds one message into the batch; votes at or below the watermark,
// bad records and votes of deleted polls only move the watermark.
func (b *batcher) add(m jetstream.Msg, t *Tally) {
	b.n++
	meta, err := m.Metadata()
	if err != nil {
		t.log.Error("tally: message without metadata", "err", err)
		return
	}
	seq := meta.Sequence.Stream
	b.pending = meta.NumPending
	if seq <= b.batch.Prev {
		return
	}
	b.batch.Last = seq
	r, err := votelog.Decode(m.Data())
	if err != nil {
		t.log.Error("tally: skipping a bad record", "seq", seq, "err", err)
		return
	}
	if t.cat.Deleted(r.PollID) {
		return
	}
	d, ok := b.batch.Polls[r.PollID]
	if !ok {
		if n := len(b.spare); n > 0 {
			d, b.spare = b.spare[n-1], b.spare[:n-1]
		} else {
			d = &PollDelta{Options: map[string]int64{}}
		}
		b.batch.Polls[r.PollID] = d
	}
	d.Total++
	for _, o := range r.Options {
		d.Options[o]++
	}
	if len(r.Voter) > 0 {
		var k [16]byte
		copy(k[:], r.Voter)
		d.Voters = append(d.Voters, k)
	} else {
		d.Anonymous++
	}
	if r.Time.After(d.At) {
		d.At = r.Time
	}
	b.counted++
}
