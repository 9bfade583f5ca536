package main

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pollcast/pollcast/ingest"
	"github.com/pollcast/pollcast/internal/snapshot"
	"github.com/pollcast/pollcast/tally"
	"github.com/pollcast/pollcast/votelog"
)

// Snapshots of the single-process mode: the memory tally store, the
// memory voter registry and the memory idempotency keys are saved together
// in one file under Data/snapshots every SnapshotInterval and at shutdown;
// a start loads the newest file that is intact and reads only the log
// after it. A file without one of the three is not loaded: what it lacks
// could not be rebuilt from the log after it.

// snapshots saves and loads the memory state of this process.
type snapshots struct {
	m   *Main
	dir *snapshot.Dir
	js  jetstream.JetStream

	mu     sync.Mutex // one save at a time
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// loaded is what a start took from a snapshot.
type loaded struct {
	store   *tally.MemoryStore
	voters  *ingest.MemoryVoters
	keys    *ingest.MemoryKeys
	covered uint64 // the voter registry and the keys hold the log up to here
	path    string // the file
}

// openSnapshots opens the snapshot directory of the memory mode.
func (m *Main) openSnapshots(js jetstream.JetStream) (*snapshots, error) {
	dir, err := snapshot.OpenDir(filepath.Join(m.cfg.Data, "snapshots"), snapshot.Config{Keep: 3, Logger: m.logger})
	if err != nil {
		return nil, err
	}
	return &snapshots{m: m, dir: dir, js: js}, nil
}

// load returns the state of the newest intact snapshot; ok is false when
// there is none, and the log is read from its start. A damaged file is
// logged and skipped, never trusted.
func (s *snapshots) load() (l loaded, ok bool) {
	paths, err := s.dir.List()
	if err != nil {
		s.m.logger.Warn("snapshots: cannot list them; reading the whole log", "err", err)
		return loaded{}, false
	}
	for _, path := range paths {
		start := time.Now()
		l, err := s.loadFile(path)
		if err != nil {
			s.m.logger.Warn("snapshots: skipping a snapshot that cannot be used", "path", path, "err", err)
			continue
		}
		s.m.logger.Info("snapshots: loaded", "path", path, "covers", l.covered, "took", time.Since(start).Round(time.Millisecond))
		l.path = path
		return l, true
	}
	return loaded{}, false
}

func (s *snapshots) loadFile(path string) (loaded, error) {
	f, err := snapshot.Open(path)
	if err != nil {
		return loaded{}, err
	}
	defer f.Close()
	tr, tn, okT := f.Section(snapshot.KindTally)
	vr, vn, okV := f.Section(snapshot.KindVoters)
	kr, kn, okK := f.Section(snapshot.KindVoteIDs)
	if !okT || !okV || !okK {
		return loaded{}, errors.New("snapshots: the counters, the voters or the idempotency keys are missing")
	}
	l := loaded{store: tally.NewMemoryStore(), voters: ingest.NewMemoryVoters(),
		keys: ingest.NewMemoryKeys(ingest.KeysConfig{Window: s.m.cfg.IdempotencyWindow})}
	var terr, verr, kerr error
	var votersCovered, keysCovered uint64
	var wg sync.WaitGroup
	wg.Go(func() { terr = l.store.LoadSnapshot(tr, tn, s.m.catalog.Deleted) })
	wg.Go(func() { votersCovered, verr = l.voters.LoadSnapshot(vr, vn) })
	wg.Go(func() { keysCovered, kerr = l.keys.LoadSnapshot(kr, kn) })
	wg.Wait()
	if err := errors.Join(terr, verr, kerr); err != nil {
		return loaded{}, err
	}
	l.covered = min(votersCovered, keysCovered) // the log after it is read for both
	return l, nil
}

// start saves a snapshot every SnapshotInterval until close.
func (s *snapshots) start() {
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.wg.Go(func() {
		t := time.NewTicker(s.m.cfg.SnapshotInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if err := s.save(ctx); err != nil && ctx.Err() == nil {
				s.m.logger.Warn("snapshots: not saved; trying again at the next interval", "err", err)
			}
		}
	})
}

// close stops the periodic saves and saves a last snapshot, once the roles
// stopped: the newest state, with no vote in flight. A process that never
// started serving saves nothing.
func (s *snapshots) close() error {
	if s.cancel == nil {
		return nil
	}
	s.cancel()
	s.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return s.save(ctx)
}

// save writes a snapshot of the memory store, the voter registry and the
// idempotency keys.
func (s *snapshots) save(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	start := time.Now()
	store := s.m.store.(*tally.MemoryStore)
	// Idle shards first: a zero watermark must keep meaning "nothing
	// applied" once retention trims the log.
	if err := s.m.tally.SettleIdle(ctx); err != nil {
		return err
	}
	voters, err := s.m.ingest.SnapshotVoters(ctx) // notes the log's end before anything is copied
	if err != nil {
		return err
	}
	keys, err := s.m.ingest.SnapshotKeys(ctx) // the same
	if err != nil {
		return err
	}
	counters := store.Snapshot()
	marks := make([]uint64, s.m.cfg.Shards)
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
	s.m.logger.Info("snapshots: saved", "path", path, "needs the log from", need, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// need is the snapshots' floor for retention: what the oldest snapshot
// kept needs, so that a restart can still fall back on it; the whole log
// before the first snapshot.
func (s *snapshots) need(context.Context) (uint64, error) {
	if need, ok := s.dir.Need(); ok {
		return need, nil
	}
	return 1, nil
}

// startRetention trims the log every RetentionInterval while serving, down
// to what every fold of this deployment saved: the tally (its snapshots in
// memory mode, its stored watermarks in Redis), the voter registry (its
// snapshots in memory mode; a Redis registry is durable) and the analytics
// store.
func (m *Main) startRetention(js jetstream.JetStream) error {
	if m.cfg.LogRetention <= 0 {
		return nil
	}
	if m.tally == nil || m.astore == nil {
		return errors.New("--log-retention needs the tally and analytics roles in this process")
	}
	floors := []votelog.Floor{{Name: "analytics", Need: func(ctx context.Context) (uint64, error) {
		last, err := m.astore.LastSeq(ctx)
		return last + 1, err
	}}}
	if m.snaps != nil {
		floors = append(floors, votelog.Floor{Name: "snapshots", Need: m.snaps.need})
	} else {
		floors = append(floors, votelog.Floor{Name: "tally", Need: m.tally.Need})
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.stopRetention = cancel
	m.retention.Go(func() {
		votelog.Retain(ctx, js, votelog.RetentionConfig{
			MaxAge: m.cfg.LogRetention, Interval: m.cfg.RetentionInterval, Floors: floors,
			Replicas: m.cfg.Replicas, Logger: m.logger,
		})
	})
	m.logger.Info("retention: votes leave the log once saved and older than", "age", m.cfg.LogRetention)
	return nil
}
