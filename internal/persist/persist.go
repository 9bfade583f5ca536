package persist

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pollcast/pollcast/ingest"
	"github.com/pollcast/pollcast/internal/snapshot"
	"github.com/pollcast/pollcast/tally"
	"github.com/pollcast/pollcast/votelog"
)

// Config configures the snapshots.
type Config struct {
	// Dir is the directory of the snapshot files. Required.
	Dir string
	// Interval is how often Start saves a snapshot. Zero value means one
	// minute.
	Interval time.Duration
	// Shards is the number of the log's shards. Zero value means
	// votelog's default.
	Shards int
	// Keep is how many files are kept. Zero value means 3.
	Keep int
	// IdempotencyWindow is the window of the idempotency keys loaded.
	// Zero value means ingest's default.
	IdempotencyWindow time.Duration
	// Drop reports a deleted poll, whose counters are not loaded. Zero
	// value means none is dropped.
	Drop func(pollID string) bool
	// Logger receives loads, saves and failures. Zero value means
	// slog.Default().
	Logger *slog.Logger
}

// Loaded is what a start took from a snapshot.
type Loaded struct {
	Store   *tally.MemoryStore
	Voters  *ingest.MemoryVoters
	Keys    *ingest.MemoryKeys
	Covered uint64 // the voter registry and the keys hold the log up to here
	Path    string // the file
}

// Roles are what a save reads from: the memory store, the tally that
// folds into it and ingest with the memory voters and keys.
type Roles struct {
	Store  *tally.MemoryStore
	Tally  *tally.Tally
	Ingest *ingest.Service
}

// Snapshots saves and loads the memory state of a single process.
type Snapshots struct {
	cfg Config
	dir *snapshot.Dir
	js  jetstream.JetStream

	mu     sync.Mutex // one save at a time
	roles  Roles      // set by Start
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New opens the snapshot directory; js is the log the snapshots' Need is
// measured on.
func New(js jetstream.JetStream, cfg Config) (*Snapshots, error) {
	if cfg.Dir == "" {
		return nil, errors.New("snapshots: no directory")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Minute
	}
	if cfg.Shards <= 0 {
		cfg.Shards = votelog.DefaultShards
	}
	if cfg.Keep <= 0 {
		cfg.Keep = 3
	}
	if cfg.Drop == nil {
		cfg.Drop = func(string) bool { return false }
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	dir, err := snapshot.OpenDir(cfg.Dir, snapshot.Config{Keep: cfg.Keep, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	return &Snapshots{cfg: cfg, dir: dir, js: js}, nil
}

// Dir returns the snapshot directory.
func (s *Snapshots) Dir() *snapshot.Dir { return s.dir }

// Load returns the state of the newest intact snapshot; ok is false when
// there is none, and the log is read from its start. A damaged file is
// logged and skipped, never trusted.
func (s *Snapshots) Load() (l Loaded, ok bool) {
	paths, err := s.dir.List()
	if err != nil {
		s.cfg.Logger.Warn("snapshots: cannot list them; reading the whole log", "err", err)
		return Loaded{}, false
	}
	for _, path := range paths {
		start := time.Now()
		l, err := s.loadFile(path)
		if err != nil {
			s.cfg.Logger.Warn("snapshots: skipping a snapshot that cannot be used", "path", path, "err", err)
			continue
		}
		s.cfg.Logger.Info("snapshots: loaded", "path", path, "covers", l.Covered, "took", time.Since(start).Round(time.Millisecond))
		l.Path = path
		return l, true
	}
	return Loaded{}, false
}

func (s *Snapshots) loadFile(path string) (Loaded, error) {
	f, err := snapshot.Open(path)
	if err != nil {
		return Loaded{}, err
	}
	defer f.Close()
	tr, tn, okT := f.Section(snapshot.KindTally)
	vr, vn, okV := f.Section(snapshot.KindVoters)
	kr, kn, okK := f.Section(snapshot.KindVoteIDs)
	if !okT || !okV || !okK {
		return Loaded{}, errors.New("snapshots: the counters, the voters or the idempotency keys are missing")
	}
	l := Loaded{Store: tally.NewMemoryStore(), Voters: ingest.NewMemoryVoters(),
		Keys: ingest.NewMemoryKeys(ingest.KeysConfig{Window: s.cfg.IdempotencyWindow})}
	var terr, verr, kerr error
	var votersCovered, keysCovered uint64
	var wg sync.WaitGroup
	wg.Go(func() { terr = l.Store.LoadSnapshot(tr, tn, s.cfg.Drop) })
	wg.Go(func() { votersCovered, verr = l.Voters.LoadSnapshot(vr, vn) })
	wg.Go(func() { keysCovered, kerr = l.Keys.LoadSnapshot(kr, kn) })
	wg.Wait()
	if err := errors.Join(terr, verr, kerr); err != nil {
		return Loaded{}, err
	}
	l.Covered = min(votersCovered, keysCovered) // the log after it is read for both
	return l, nil
}

// Start saves a snapshot of roles every Interval until Close.
func (s *Snapshots) Start(roles Roles) {
	s.mu.Lock()
	s.roles = roles
	s.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.wg.Go(func() {
		t := time.NewTicker(s.cfg.Interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if err := s.Save(ctx); err != nil && ctx.Err() == nil {
				s.cfg.Logger.Warn("snapshots: not saved; trying again at the next interval", "err", err)
			}
		}
	})
}

// Close stops the periodic saves and saves a last snapshot; call it once
// the roles stopped: the newest state, with no vote in flight. Snapshots
// never started save nothing.
func (s *Snapshots) Close() error {
	if s.cancel == nil {
		return nil
	}
	s.cancel()
	s.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return s.Save(ctx)
}

// Save writes a snapshot of the memory store, the voter registry and the
// idempotency keys of the roles given to Start.
func (s *Snapshots) Save(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.roles
	if r.Store == nil || r.Tally == nil || r.Ingest == nil {
		return errors.New("snapshots: not started")
	}
	start := time.Now()
	// Idle shards first: a zero watermark must keep meaning "nothing
	// applied" once retention trims the log.
	if err := r.Tally.SettleIdle(ctx); err != nil {
		return fmt.Errorf("snapshots: %w", err)
	}
	voters, err := r.Ingest.SnapshotVoters(ctx) // notes the log's end before anything is copied
	if err != nil {
		return err
	}
	keys, err := r.Ingest.SnapshotKeys(ctx) // the same
	if err != nil {
		return err
	}
	counters := r.Store.Snapshot()
	marks := make([]uint64, s.cfg.Shards)
	for shard := range marks {
		marks[shard] = counters.Watermark(shard)
	}
	need, err := votelog.ShardsNeed(ctx, s.js, marks)
	if err != nil {
		return err
	}
	need = min(need, voters.Covered()+1, keys.Covered()+1)
	path, err := s.dir.Save(need, []snapshot.Section{
		{Kind: snapshot.KindTally, Write: counters.Write},
		{Kind: snapshot.KindVoters, Write: func(w io.Writer) error { return voters.Write(ctx, w) }},
		{Kind: snapshot.KindVoteIDs, Write: func(w io.Writer) error { return keys.Write(ctx, w) }},
	})
	if err != nil {
		return err
	}
	s.cfg.Logger.Info("snapshots: saved", "path", path, "needs the log from", need, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// Need is the snapshots' floor for retention: what the oldest snapshot
// kept needs, so that a restart can still fall back on it; the whole log
// before the first snapshot.
func (s *Snapshots) Need(context.Context) (uint64, error) {
	if need, ok := s.dir.Need(); ok {
		return need, nil
	}
	return 1, nil
}
