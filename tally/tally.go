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
	// BatchSize caps the votes applied at once by a shard worker. Zero
	// value means 4096.
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
	// Observe, when set, is handed every vote record of the log that the
	// start-up catch-up reads, in log order, a batch at a time (up to some
	// thousands), so that other state rebuilt from the log (ingest's voter
	// registry) rides on the same read; the records are not to be kept.
	// more is how many messages of the log follow the batch, as far as the
	// reader knows: a hint to make room for them at once. Observed says how
	// far it got. An error stops the catch-up, and the shard workers fold
	// the rest.
	Observe func(records []*votelog.Record, more uint64) error
}

// Tally runs the shard workers: New, then Start, then Close.
type Tally struct {
	js    jetstream.JetStream
	nc    *nats.Conn
	store Store
	cat   *poll.Catalog
	cfg   Config
	log   *slog.Logger

	shards     []*shardState
	catchingUp atomic.Uint64 // messages the start-up reader has still to read
	observed   atomic.Uint64 // the log up to here went through Config.Observe
	direct     atomic.Uint64 // the start-up catch-up folded the log up to here with direct gets
	noCatchUp  bool          // tests: let the shard workers rebuild alone
	applied    prometheus.Counter
	batches    prometheus.Counter

	mu      sync.Mutex // guards started, closed, cancel
	started bool
	closed  bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

type shardState struct {
	applied atomic.Uint64 // watermark this process knows is stored
	pending atomic.Uint64 // votes of the shard still in the log after the last one read
}

// New returns a tally over the VOTES stream of js, folding into store,
// skipping the votes of polls cat knows as deleted, and publishing counts
// through nc. Call Start to run it.
func New(js jetstream.JetStream, nc *nats.Conn, store Store, cat *poll.Catalog, cfg Config) (*Tally, error) {
	if js == nil || nc == nil || store == nil || cat == nil {
		return nil, errors.New("tally: js, nc, store and catalog are required")
	}
	cfg.Shards = cmp.Or(cfg.Shards, votelog.DefaultShards)
	cfg.BatchSize = cmp.Or(cfg.BatchSize, 4096)
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	cfg.LeaseRenew = cmp.Or(cfg.LeaseRenew, time.Second)
	cfg.Owner = cmp.Or(cfg.Owner, poll.NewID(9))
	if cfg.Shards < 1 || cfg.BatchSize < 1 || cfg.LeaseRenew < 0 {
		return nil, errors.New("tally: shards, batch size and lease renewal must be positive")
	}
	t := &Tally{js: js, nc: nc, store: store, cat: cat, cfg: cfg, log: cfg.Logger,
		applied: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pollcast_tally_votes_applied_total", Help: "Votes folded into the tally store.",
		}),
		batches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pollcast_tally_batches_applied_total", Help: "Batches applied to the tally store.",
		}),
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

// Start starts the workers and returns at once; they run until Close (ctx
// only carries values). Without Leases, one reader first folds the log as
// it stands for every shard (see catchUp), then one worker per shard
// follows its shard; with Leases, each worker waits for its shard's lease.
// Start may be called once.
func (t *Tally) Start(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.closed:
		return errors.New("tally: start after close")
	case t.started:
		return errors.New("tally: already started")
	}
	t.started = true
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	t.cancel = cancel
	t.wg.Go(func() {
		if t.cfg.Leases == nil && !t.noCatchUp {
			t.catchUp(wctx)
		}
		for shard := range t.shards {
			t.wg.Go(func() { t.runShard(wctx, shard) })
		}
	})
	return nil
}

// Close stops every worker and waits for them. It may be called more than
// once, and before Start.
func (t *Tally) Close() {
	t.mu.Lock()
	t.closed = true
	cancel := t.cancel
	t.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	t.wg.Wait()
}

// Lag returns about how many votes in the log are not yet applied, as of
// the last message each reader got: for metrics and readiness.
func (t *Tally) Lag() uint64 {
	n := t.catchingUp.Load()
	for _, s := range t.shards {
		n += s.pending.Load()
	}
	return n
}

// WaitCaughtUp blocks until every shard has applied everything that was in
// the log when it was called, or ctx ends. With Leases it only returns once
// this process holds and has caught up every shard: don't call it then.
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
// ctx ends or something fails (ErrFenced when another worker moved the
// watermark).
func (t *Tally) follow(ctx context.Context, shard int) error {
	mark, err := t.store.Watermark(ctx, shard)
	if err != nil {
		return fmt.Errorf("tally: watermark: %w", err)
	}
	st := t.shards[shard]
	st.applied.Store(mark)
	in, stop, err := t.consume(ctx, mark, votelog.ShardFilter(shard), t.cfg.BatchSize)
	if err != nil {
		return err
	}
	defer stop()

	b := newBatcher(shard, t.log, t.cat.Deleted)
	var got []jetstream.Msg
	for {
		if got = in.take(ctx, got, 0); got == nil {
			return ctx.Err()
		}
		b.reset(mark)
		var pending uint64
		for _, m := range got {
			seq, left, err := position(m)
			if err != nil {
				t.log.Error("tally: message without metadata", "shard", shard, "err", err)
				continue
			}
			pending = left
			b.add(seq, m.Data())
		}
		if b.empty() {
			continue // only redeliveries at or below the watermark
		}
		if err := t.apply(ctx, &b.batch); err != nil {
			return err
		}
		mark = b.batch.Last
		st.applied.Store(mark)
		st.pending.Store(pending)
		t.applied.Add(float64(b.counted))
		t.batches.Inc()
		for id := range b.batch.Polls {
			t.publish(ctx, id)
		}
	}
}

// consume reads the stream from sequence mark+1 (from the start when mark
// is 0) with an ordered consumer on filter ("" for the whole stream). The
// messages arrive in the returned inbox until stop is called.
func (t *Tally) consume(ctx context.Context, mark uint64, filter string, pull int) (in *inbox[jetstream.Msg], stop func(), err error) {
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	if filter != "" {
		cfg.FilterSubjects = []string{filter}
	}
	if mark > 0 {
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = mark + 1
	}
	cons, err := t.js.OrderedConsumer(ctx, votelog.StreamName, cfg)
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
			return fmt.Errorf("tally: apply batch: %w", ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
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
