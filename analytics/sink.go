package analytics

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pollcast/pollcast/votelog"
)

// SinkConfig configures NewSink.
type SinkConfig struct {
	// BatchSize is the votes that fill a batch. A batch holds the votes of
	// whole log messages, never part of one, so it may pass BatchSize by
	// less than one message's votes (yet never MaxInsert). Zero value means
	// 50,000; it is capped at MaxInsert.
	BatchSize int
	// FlushInterval is the longest a vote waits for its batch to fill.
	// Zero value means 1s.
	FlushInterval time.Duration
	// Logger receives operational messages. Zero value means slog.Default().
	Logger *slog.Logger
	// Registerer receives the sink metrics. Zero value means no metrics.
	Registerer prometheus.Registerer
}

// Sink copies every vote of the log into a Store in batches. It resumes
// after the largest sequence the store holds, so each vote lands exactly
// once; when the store is down it retries the same batch with backoff and
// reads no further.
type Sink struct {
	js        jetstream.JetStream
	store     Store
	cfg       SinkConfig
	log       *slog.Logger
	maxInsert int // the most rows in one insert: MaxInsert

	stored  atomic.Uint64 // largest sequence known stored
	read    atomic.Uint64 // sequence of the last message read
	pending atomic.Uint64 // messages in the log after the last one read
	failing atomic.Bool
	rows    prometheus.Counter

	dec votelog.Decoder // rowsOf's, on the one goroutine that reads the log
	rec votelog.Record
	// busy reports whether the machine's CPUs are saturated: then the sink
	// gives way to vote intake after each insert (giveway.go).
	busy func() bool

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewSink returns a sink from the VOTES stream of js into store.
func NewSink(js jetstream.JetStream, store Store, cfg SinkConfig) (*Sink, error) {
	cfg.BatchSize = min(cmp.Or(cfg.BatchSize, 50_000), MaxInsert)
	cfg.FlushInterval = cmp.Or(cfg.FlushInterval, time.Second)
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	s := &Sink{js: js, store: store, cfg: cfg, log: cfg.Logger, maxInsert: MaxInsert, cancel: func() {},
		busy: newCPULoad().saturated,
		rows: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pollcast_analytics_rows_stored_total", Help: "Votes stored in the analytics store.",
		})}
	if cfg.Registerer != nil {
		lag := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "pollcast_analytics_lag_votes", Help: "Votes in the log not yet in the analytics store.",
		}, func() float64 { return float64(s.Lag()) })
		down := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "pollcast_analytics_store_failing", Help: "1 while inserts into the analytics store fail.",
		}, func() float64 {
			if s.failing.Load() {
				return 1
			}
			return 0
		})
		for _, c := range []prometheus.Collector{s.rows, lag, down} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("analytics: metrics: %w", err)
			}
		}
	}
	return s, nil
}

// Start runs the sink until Close.
func (s *Sink) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.wg.Go(func() { s.run(ctx) })
}

// Close stops the sink. A batch not yet stored is dropped from memory and
// read again from the log on the next start.
func (s *Sink) Close() {
	s.cancel()
	s.wg.Wait()
}

// Lag returns the log messages read but not stored, plus those not read
// yet, as of the last message read. It counts messages, not votes: a pack
// of votes counts once.
func (s *Sink) Lag() uint64 {
	unstored := uint64(0)
	if read, stored := s.read.Load(), s.stored.Load(); read > stored {
		unstored = read - stored
	}
	return s.pending.Load() + unstored
}

// Stored returns the largest sequence known to be stored.
func (s *Sink) Stored() uint64 {
	return s.stored.Load()
}

func (s *Sink) run(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := s.follow(ctx)
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("analytics: sink restarting", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

// follow reads the log after the store's last sequence and stores batches
// until ctx ends or the log fails.
func (s *Sink) follow(ctx context.Context) error {
	last, err := s.retry(ctx, func() (uint64, error) { return s.store.LastSeq(ctx) })
	if err != nil {
		return err
	}
	s.stored.Store(last)
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{"votes.>"}, DeliverPolicy: jetstream.DeliverAllPolicy}
	if last > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, last+1
	}
	cons, err := s.js.OrderedConsumer(ctx, votelog.StreamName, cfg)
	if err != nil {
		return fmt.Errorf("analytics: consumer: %w", err)
	}
	msgs := make(chan jetstream.Msg, 4096)
	fctx, stop := context.WithCancel(ctx)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case msgs <- m:
		case <-fctx.Done():
		}
	}, jetstream.PullMaxMessages(4096))
	if err != nil {
		stop()
		return fmt.Errorf("analytics: consume: %w", err)
	}
	defer func() {
		stop()
		cc.Stop()
	}()

	return s.drain(ctx, msgs, last, s.rowsOf)
}

// drain stores the rows that rowsOf makes of the messages of msgs in
// batches, skipping messages at or below last (stored already), until ctx
// ends or the store fails for good.
//
// A batch ends only between two messages: the sink resumes after the
// largest sequence stored, so storing part of a message and crashing would
// lose the rest of it.
func (s *Sink) drain(ctx context.Context, msgs <-chan jetstream.Msg, last uint64, rowsOf func(jetstream.Msg, []Vote) []Vote) error {
	batch := make([]Vote, 0, min(s.cfg.BatchSize, 65536))
	var flush <-chan time.Time
	var timer *time.Timer
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case m := <-msgs:
			n := len(batch)
			batch = rowsOf(m, batch)
			if len(batch) == n {
				continue
			}
			if batch[n].Seq <= last {
				batch = batch[:n] // read again: stored or in the batch already
				continue
			}
			last = batch[n].Seq
			if len(batch) > s.maxInsert {
				// Too many for one insert with this message: store the
				// batch before it, and the message starts the next one.
				if err := s.insert(ctx, batch[:n]); err != nil {
					return err
				}
				batch = batch[:copy(batch, batch[n:])]
			}
			if flush == nil {
				timer = time.NewTimer(s.cfg.FlushInterval)
				flush = timer.C
			}
			if len(batch) < s.cfg.BatchSize {
				continue
			}
		case <-flush:
		}
		if timer != nil {
			timer.Stop()
			timer, flush = nil, nil
		}
		if len(batch) == 0 {
			continue
		}
		if err := s.insert(ctx, batch); err != nil {
			return err
		}
		batch = batch[:0]
	}
}

// insert stores a batch of whole messages' rows, retrying until it is
// stored or ctx ends.
func (s *Sink) insert(ctx context.Context, batch []Vote) error {
	if len(batch) == 0 {
		return nil
	}
	start := time.Now()
	if _, err := s.retry(ctx, func() (uint64, error) { return 0, s.store.Insert(ctx, batch) }); err != nil {
		return err
	}
	s.stored.Store(batch[len(batch)-1].Seq)
	s.rows.Add(float64(len(batch)))
	if s.busy() {
		t := time.NewTimer(time.Since(start)) // give way: intake first (giveway.go)
		defer t.Stop()
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
	return nil
}

// rowsOf appends the rows of one log message to out: a row for each vote it
// holds, all with the message's stream sequence and Idx the vote's position
// in the message (0 for a message of one vote), so that a message read again
// yields the same keys. A vote that does not decode is skipped (logged);
// the others keep their positions.
func (s *Sink) rowsOf(m jetstream.Msg, out []Vote) []Vote {
	meta, err := m.Metadata()
	if err != nil {
		s.log.Error("analytics: message without metadata", "err", err)
		return out
	}
	s.pending.Store(meta.NumPending)
	s.read.Store(meta.Sequence.Stream)
	seq := meta.Sequence.Stream
	r := &s.rec
	_ = s.dec.Each(r, m.Data(), func(i int, err error) error {
		if err != nil {
			s.log.Error("analytics: skipping a bad record", "seq", seq, "index", i, "err", err)
			return nil
		}
		out = append(out, Vote{
			Seq: seq, Idx: uint32(i), VoteID: r.VoteID, PollID: r.PollID,
			Options: slices.Clone(r.Options), // the decoder reuses r.Options
			Time:    r.Time.Truncate(time.Second).UTC(), Region: r.Region, Country: r.Country,
			Device: r.Device, Referrer: r.Referrer,
		})
		return nil
	})
	return out
}

// retry calls fn until it succeeds or ctx ends, backing off up to 10s: the
// store may be down for a while; the log keeps everything meanwhile.
func (s *Sink) retry(ctx context.Context, fn func() (uint64, error)) (uint64, error) {
	backoff := 100 * time.Millisecond
	for {
		v, err := fn()
		if err == nil {
			if s.failing.Swap(false) {
				s.log.Info("analytics: store is back")
			}
			return v, nil
		}
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if !s.failing.Swap(true) {
			s.log.Warn("analytics: store failing; retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}
