package tally

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	// DirectRead lets the start-up catch-up read the log with batched
	// direct gets rather than a consumer when every shard's watermark is
	// zero (see direct.go). That read applies the shards one after another,
	// not in one step, and a crash between two would count some votes
	// twice: set it only for a store that dies with the process and starts
	// empty (MemoryStore). Zero value means the log is read with a
	// consumer, which is safe for any store.
	DirectRead bool
	// LogCheck is how often the watermarks of the shards being read are
	// compared with the end of the log, to find a log that lost its tail
	// while the tally runs (behind.go). Zero value means 1s.
	LogCheck time.Duration
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
	refusing   atomic.Bool   // a shard refuses to rebuild from a trimmed log (ErrLogTrimmed)
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

	following following // the worker's current read, for watchLog to restart (behind.go)
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
	cfg.LogCheck = cmp.Or(cfg.LogCheck, time.Second)
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
		t.wg.Go(func() { t.watchLog(wctx) })
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
		if t.refusing.Load() {
			return ErrLogTrimmed
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("tally: catching up: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// Observed returns the stream sequence up to which every vote record of
// the log went through Config.Observe: zero when none did. It is final once
// WaitCaughtUp returned.
func (t *Tally) Observed() uint64 { return t.observed.Load() }
