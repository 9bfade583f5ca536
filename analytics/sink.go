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

	"github.com/pollcast/pollcast/internal/retry"
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
	// LogCheck is how often the sink compares what it read with the end of
	// the log, to find a log that lost its tail while it runs (behind.go).
	// Zero value means 1s.
	LogCheck time.Duration
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
	cfg.LogCheck = cmp.Or(cfg.LogCheck, time.Second)
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

// run follows the log until ctx ends, starting over after a delay when the
// log fails under it.
func (s *Sink) run(ctx context.Context) {
	b := retry.Backoff{Min: 100 * time.Millisecond, Max: 10 * time.Second}
	for ctx.Err() == nil {
		err := s.follow(ctx)
		if ctx.Err() != nil {
			return
		}
		wait := b.Next()
		s.log.Warn("analytics: sink restarting", "err", err, "in", wait)
		if retry.Sleep(ctx, wait) != nil {
			return
		}
	}
}

// follow reads the log after the store's last sequence and stores batches
// until ctx ends or the log fails.
func (s *Sink) follow(ctx context.Context) error {
	var last uint64
	err := s.untilStored(ctx, func(ctx context.Context) (err error) {
		last, err = s.store.LastSeq(ctx)
		return err
	})
	if err != nil {
		return err
	}
	if last, err = s.trimAhead(ctx, last); err != nil {
		return err
	}
	s.stored.Store(last)
	cons, err := votelog.Reader(ctx, s.js, last, votelog.AllVotes)
	if err != nil {
		return fmt.Errorf("analytics: %w", err)
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
	b := rowBatch{rows: make([]Vote, 0, min(s.cfg.BatchSize, 65536)), last: last}
	defer b.stopTimer()
	check := time.NewTicker(s.cfg.LogCheck)
	defer check.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-check.C:
			if err := s.behind(ctx, b.last); err != nil {
				return err // follow starts over, and trims the rows past the log's end
			}
			continue
		case m := <-msgs:
			added, err := s.add(ctx, &b, m, rowsOf)
			if err != nil {
				return err
			}
			if !added || len(b.rows) < s.cfg.BatchSize {
				continue
			}
		case <-b.due():
		}
		b.stopTimer()
		if err := s.insert(ctx, b.rows); err != nil {
			return err
		}
		b.rows = b.rows[:0]
	}
}

// rowBatch is the rows drain has read and not stored yet.
type rowBatch struct {
	rows []Vote
	// last is the sequence of the newest message read: a message at or
	// below it is stored or in rows already.
	last uint64
	// timer stores rows that waited FlushInterval; armed by the first
	// message of a batch, nil while none waits.
	timer *time.Timer
}

// due returns the channel on which the batch's timer fires: nil, which
// never fires, while none is armed.
func (b *rowBatch) due() <-chan time.Time {
	if b.timer == nil {
		return nil
	}
	return b.timer.C
}

func (b *rowBatch) stopTimer() {
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
}

// add appends the rows of message m to b unless m was read already, and
// reports whether it did. When they would make b too many rows for one
// insert, it first stores the rows before them, and m's start the next
// batch.
func (s *Sink) add(ctx context.Context, b *rowBatch, m jetstream.Msg, rowsOf func(jetstream.Msg, []Vote) []Vote) (bool, error) {
	n := len(b.rows)
	b.rows = rowsOf(m, b.rows)
	if len(b.rows) == n {
		return false, nil
	}
	if b.rows[n].Seq <= b.last {
		b.rows = b.rows[:n] // read again: stored or in the batch already
		return false, nil
	}
	b.last = b.rows[n].Seq
	if len(b.rows) > s.maxInsert {
		if err := s.insert(ctx, b.rows[:n]); err != nil {
			return false, err
		}
		b.rows = b.rows[:copy(b.rows, b.rows[n:])]
	}
	if b.timer == nil {
		b.timer = time.NewTimer(s.cfg.FlushInterval)
	}
	return true, nil
}

// insert stores a batch of whole messages' rows, retrying until it is
// stored or ctx ends.
func (s *Sink) insert(ctx context.Context, batch []Vote) error {
	if len(batch) == 0 {
		return nil
	}
	start := time.Now()
	if err := s.untilStored(ctx, func(ctx context.Context) error { return s.store.Insert(ctx, batch) }); err != nil {
		return err
	}
	s.stored.Store(batch[len(batch)-1].Seq)
	s.rows.Add(float64(len(batch)))
	if s.busy() {
		_ = retry.Sleep(ctx, time.Since(start)) // give way: intake first (giveway.go)
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

// untilStored calls fn until the store answers or ctx ends, backing off up
// to 10s: the store may be down for a while; the log keeps everything
// meanwhile. An outage is logged once, when it starts and when it ends.
func (s *Sink) untilStored(ctx context.Context, fn func(context.Context) error) error {
	b := retry.Backoff{Min: 100 * time.Millisecond, Max: 10 * time.Second}
	err := retry.Do(ctx, b, fn, func(err error, wait time.Duration) {
		if !s.failing.Swap(true) {
			s.log.Warn("analytics: store failing; retrying", "err", err, "in", wait)
		}
	})
	if err == nil && s.failing.Swap(false) {
		s.log.Info("analytics: store is back")
	}
	return err
}
