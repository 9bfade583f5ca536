package ingest

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pollcast/pollcast/internal/retry"
	"github.com/pollcast/pollcast/votelog"
)

// Rebuild reads the whole log once and remembers every voter in it, so that
// one-voter-one-vote holds across restarts. Votes must not be admitted
// before it returns.
func (s *Service) Rebuild(ctx context.Context) error {
	return s.RebuildAfter(ctx, 0)
}

// RebuildAfter is Rebuild for a process that already fed the log up to
// stream sequence seen to Remember (the tally's start-up read, so that the
// log is read once): it reads only what follows.
func (s *Service) RebuildAfter(ctx context.Context, seen uint64) error {
	if err := s.readWindow(ctx); err != nil {
		return err
	}
	if s.voters.Durable() {
		complete, err := s.voters.Complete(ctx)
		if err != nil {
			return fmt.Errorf("ingest: rebuild: %w", err)
		}
		if !complete {
			if err := s.rebuildDurable(ctx, false); err != nil {
				return err
			}
		}
		if err := s.startClaims(ctx); err != nil {
			return err
		}
		s.rebuilt.Store(true) // the registry outlived the last process, or is rebuilt
		return nil
	}
	if _, err := s.readVoters(ctx, seen); err != nil {
		return err
	}
	s.rebuilt.Store(true)
	return nil
}

// rebuildDurable refills a durable registry that lost its data from the
// whole log, then marks it complete. With settle, it first waits out the
// votes claimed before the loss and still on their way to the log (at most
// PublishTimeout: claims are refused meanwhile), and reads what they added:
// otherwise such a vote's voter could vote again in between.
func (s *Service) rebuildDurable(ctx context.Context, settle bool) error {
	start := time.Now()
	last, err := s.readVoters(ctx, 0)
	if err != nil {
		return err
	}
	if settle {
		if err := retry.Sleep(ctx, s.cfg.PublishTimeout+time.Second); err != nil {
			return fmt.Errorf("ingest: rebuild: %w", err)
		}
		if _, err := s.readVoters(ctx, last); err != nil {
			return err
		}
	}
	if err := s.voters.MarkComplete(ctx); err != nil {
		return fmt.Errorf("ingest: rebuild: %w", err)
	}
	s.cfg.Logger.Info("ingest: voter registry rebuilt from the log", "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// watchVoters checks a durable registry every VotersCheck, and at once when
// a claim found it lost; when it lost its data, votes of deduplicated polls
// are refused (503) until it is rebuilt from the log, so that nobody votes
// twice through the gap.
func (s *Service) watchVoters(ctx context.Context) {
	t := time.NewTicker(s.cfg.VotersCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.lost:
		}
		if !s.rebuilt.Load() {
			continue // the start-up rebuild has not run yet
		}
		complete, err := s.voters.Complete(ctx)
		if err != nil || complete {
			continue // an unreachable registry refuses claims by itself
		}
		if err := s.rebuildLost(ctx); err != nil {
			return // ctx ended
		}
	}
}

// rebuildLost rebuilds a durable registry that lost its data, refusing
// votes of deduplicated polls meanwhile, and retries every VotersCheck
// until it is done or ctx ends.
func (s *Service) rebuildLost(ctx context.Context) error {
	s.rebuilt.Store(false)
	s.cfg.Logger.Warn("ingest: the voter registry lost its data; rebuilding it from the log, votes of deduplicated polls wait")
	every := retry.Backoff{Min: s.cfg.VotersCheck, Max: s.cfg.VotersCheck}
	err := retry.Do(ctx, every, func(ctx context.Context) error { return s.rebuildDurable(ctx, true) },
		func(err error, wait time.Duration) {
			s.cfg.Logger.Warn("ingest: voter registry rebuild failed; retrying", "err", err, "in", wait)
		})
	if err != nil {
		return err
	}
	s.rebuilt.Store(true)
	return nil
}

// signal leaves a token in a 1-buffered channel unless one is there.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// rebuildIdle ends a rebuild that gets no message for that long with an
// error, rather than wait forever for a message that was deleted.
const rebuildIdle = 10 * time.Second

// readVoters records the voter of every vote of the log after sequence
// seen in the registry, up to the end of the log as it was when called,
// which it returns.
func (s *Service) readVoters(ctx context.Context, seen uint64) (uint64, error) {
	last, err := votelog.LastSeq(ctx, s.js)
	if err != nil {
		return 0, fmt.Errorf("ingest: rebuild: %w", err)
	}
	if last <= seen {
		return seen, nil
	}
	if purged, err := votelog.PurgedBelow(ctx, s.js); err != nil || purged > seen+1 {
		return 0, fmt.Errorf("ingest: rebuild: %w", cmp.Or(err, ErrLogTrimmed))
	}
	cons, err := votelog.Reader(ctx, s.js, seen, votelog.AllVotes)
	if err != nil {
		return 0, fmt.Errorf("ingest: rebuild: %w", err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(8192))
	if err != nil {
		return 0, fmt.Errorf("ingest: rebuild: %w", err)
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	if err := s.recordVoters(ctx, it, last); err != nil {
		return 0, fmt.Errorf("ingest: rebuild: %w", err)
	}
	return last, nil
}

// recordVoters records the voters of the messages of it in the registry
// until the one at sequence last, or until it has no more.
func (s *Service) recordVoters(ctx context.Context, it jetstream.MessagesContext, last uint64) error {
	b := voterBatch{s: s, vs: make([]voterVote, 0, voterBatchLen)}
	var at uint64
	for {
		msg, err := it.Next(jetstream.NextMaxWait(rebuildIdle))
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("at sequence %d of %d: %w", at, last, err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			return err
		}
		b.add(msg.Data())
		at = meta.Sequence.Stream
		// Done at the end as it was, or earlier when the rest was deleted.
		done := at >= last || meta.NumPending == 0
		if len(b.vs) >= voterBatchLen || len(b.keys) >= voterBatchLen || done {
			if err := b.flush(ctx); err != nil {
				return err
			}
		}
		if done {
			return nil
		}
	}
}

// voterBatchLen is the voters recorded at once: one round trip each to a
// Redis registry.
const voterBatchLen = 1024

// voterBatch collects the voters the registry keeps from logged messages
// and records them a batch at a time.
type voterBatch struct {
	s    *Service
	dec  votelog.Decoder
	rec  votelog.Record
	rule pollRule
	vs   []voterVote
	keys []keyedVote
}

// add collects the voters and the idempotency keys of the votes of one
// log message.
func (b *voterBatch) add(data []byte) {
	_ = b.dec.Each(&b.rec, data, func(_ int, err error) error {
		if err != nil {
			return nil
		}
		if k, id, ok := b.s.voterOf(&b.rec, &b.rule); ok {
			b.vs = append(b.vs, voterVote{k, id})
		}
		if kv, ok := keyOf(&b.rec); ok {
			b.keys = append(b.keys, kv)
		}
		return nil
	})
}

// flush records the voters and keys collected.
func (b *voterBatch) flush(ctx context.Context) error {
	if len(b.vs) > 0 {
		if err := b.s.voters.RecordMany(ctx, b.vs); err != nil {
			return err
		}
		b.vs = b.vs[:0]
	}
	if len(b.keys) > 0 {
		if err := b.s.keys.RecordMany(ctx, b.keys); err != nil {
			return err
		}
		b.keys = b.keys[:0]
	}
	return nil
}

// keyOf returns the keyed vote of a logged vote whose ID derives from an
// idempotency key.
func keyOf(r *votelog.Record) (keyedVote, bool) {
	if !r.Keyed {
		return keyedVote{}, false
	}
	id, err := parseVoteID(r.VoteID)
	if err != nil {
		return keyedVote{}, false
	}
	return keyedVote{id, r.Time}, true
}

// Remember records the voters and idempotency keys of logged votes, given in log order, in a
// registry that does not outlive the process: a reader of the log that
// this process runs anyway (the tally's start-up read) calls it, so that
// RebuildAfter has only the rest to read. more is a hint: how many votes of
// the log follow these, for which the registry may make room at once. The
// records are not kept.
func (s *Service) Remember(ctx context.Context, rs []*votelog.Record, more uint64) error {
	if s.voters.Durable() || len(rs) == 0 {
		return nil
	}
	if r, ok := s.voters.(reserver); ok {
		r.reserve(uint64(len(rs)) + more)
	}
	s.rememberMu.Lock()
	defer s.rememberMu.Unlock()
	vs := s.remembered[:0]
	var (
		rule pollRule
		keys []keyedVote
	)
	for _, r := range rs {
		if k, id, ok := s.voterOf(r, &rule); ok {
			vs = append(vs, voterVote{k, id})
		}
		if kv, ok := keyOf(r); ok {
			keys = append(keys, kv)
		}
	}
	s.remembered = vs
	if err := s.voters.RecordMany(ctx, vs); err != nil {
		return err
	}
	return s.keys.RecordMany(ctx, keys)
}

// pollRule caches whether the registry keeps the voters of the poll of the
// logged votes read last: the votes of a pack, and of a burst, share a poll.
type pollRule struct {
	id   string
	keep bool
}

// voterOf returns the voter and vote ID of a logged vote that the registry
// keeps: it has a voter, it was written by ingest (no retry can name
// another's vote), and its poll's voters are kept (a poll the catalog does
// not know, or no longer knows, is kept: better kept than missed).
func (s *Service) voterOf(r *votelog.Record, rule *pollRule) (voterKey, voteID, bool) {
	if len(r.Voter) != len(voterKey{}) {
		return voterKey{}, voteID{}, false
	}
	if r.PollID != rule.id {
		p, ok := s.cat.Poll(r.PollID)
		rule.id, rule.keep = r.PollID, !ok || remembers(p)
	}
	if !rule.keep {
		return voterKey{}, voteID{}, false
	}
	id, err := parseVoteID(r.VoteID)
	if err != nil {
		return voterKey{}, voteID{}, false
	}
	return voterKey(r.Voter), id, true
}
