package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/pollcast/pollcast/internal/snapshot"
	"github.com/pollcast/pollcast/votelog"
)

// A snapshot of the memory registry must hold every voter whose vote the
// log holds up to the sequence it claims to cover, although the registry is
// written by ingest when a vote's outcome is known, not by a reader of the
// log. So:
//
//  1. SnapshotVoters reads the log's last sequence, L, before anything is
//     copied: the snapshot covers the log up to L.
//  2. Write copies the registry a shard at a time, the stored votes and the
//     claims still pending. A vote at or below L was acknowledged before
//     the copy began: its voter is in the stored votes copied, or its claim
//     was pending when its shard was copied (a claim lasts from before the
//     publish until the outcome is recorded).
//  3. Write then waits for each pending claim copied to be settled and adds
//     the votes stored by it. A claim that stays unsettled past
//     PublishTimeout and a margin fails the snapshot: it is tried again
//     at the next interval.
//
// A restart loads the registry and reads the log after L. Votes of polls
// whose voters are recorded without a claim (Record: polls that count
// every vote but show results after a vote) may be missed when they land
// during the copy; HasVoted asks the tally about such polls' voters, and
// the tally's snapshot is exact.

// ErrLogTrimmed is returned by a rebuild of the registry that needs votes
// retention removed from the log: a memory registry without a snapshot
// covering them, or a durable one that lost its data.
var ErrLogTrimmed = errors.New("the log no longer holds the votes the voter registry needs (--log-retention removed them): restore the registry (Redis from its AOF, or a snapshot) to go on")

// votersChunk is how many votes a snapshot writes or loads at a time.
const votersChunk = 1 << 16

// VotersSnapshot is a snapshot of the memory voter registry on its way to
// a file: made by SnapshotVoters, written once by Write.
type VotersSnapshot struct {
	s       *Service
	mv      *MemoryVoters
	covered uint64
}

// ErrNotSnapshotted is returned by SnapshotVoters and SnapshotKeys when
// the registry is not the memory one: a durable registry needs no snapshot.
var ErrNotSnapshotted = errors.New("ingest: only the memory registries are snapshotted")

// SnapshotVoters begins a snapshot of the memory voter registry: it notes
// the log's last sequence, which the snapshot will cover.
func (s *Service) SnapshotVoters(ctx context.Context) (*VotersSnapshot, error) {
	mv, ok := s.voters.(*MemoryVoters)
	if !ok {
		return nil, ErrNotSnapshotted
	}
	last, err := votelog.LastSeq(ctx, s.js)
	if err != nil {
		return nil, fmt.Errorf("ingest: snapshot voters: %w", err)
	}
	return &VotersSnapshot{s: s, mv: mv, covered: last}, nil
}

// Covered returns the log sequence the snapshot covers: after a restart
// from it, the registry is rebuilt from the log after that sequence
// (RebuildAfter).
func (vs *VotersSnapshot) Covered() uint64 { return vs.covered }

// Write writes the snapshot as the payload of a snapshot.KindVoters
// section: a hint of the number of votes, then chunks of votes (a count,
// then that many voter keys and vote IDs, 32 bytes each) ending with an
// empty chunk, then the sequence covered. Each registry shard is locked
// only while it is copied.
func (vs *VotersSnapshot) Write(ctx context.Context, w io.Writer) error {
	e := snapshot.NewEncoder(w)
	e.U64(uint64(vs.mv.storedLen()))
	var (
		stored  []voterVote
		pending []voterVote
		buf     = make([]byte, 0, 32*votersChunk)
	)
	flush := func(votes []voterVote) {
		for len(votes) > 0 {
			n := min(len(votes), votersChunk)
			e.U64(uint64(n))
			buf = buf[:0]
			for _, v := range votes[:n] {
				buf = append(buf, v.key[:]...)
				buf = append(buf, v.id[:]...)
			}
			e.Raw(buf)
			votes = votes[n:]
		}
	}
	for i := range vs.mv.shards {
		stored, pending = vs.mv.shards[i].copyTo(stored[:0], pending)
		flush(stored)
	}
	settled, err := vs.settle(ctx, pending)
	if err != nil {
		return err
	}
	flush(settled)
	e.U64(0)
	e.U64(vs.covered)
	return e.Err()
}

// settle waits until each of the claims pending during the copy is settled
// and returns the votes they stored.
func (vs *VotersSnapshot) settle(ctx context.Context, pending []voterVote) ([]voterVote, error) {
	return settleClaims(ctx, vs.s.cfg.PublishTimeout+2*time.Second, "voters", pending,
		func(p voterVote) (voterVote, bool, bool) {
			vote, ok, done := vs.mv.settled(p)
			return voterVote{key: p.key, id: vote}, ok, done
		})
}

// settleClaims polls check for each of the claims pending during a
// snapshot's copy until all are settled (done), at most for limit, and
// returns what the settled ones stored (ok). Claims settle once the log
// answers their votes, so limit is the log's answer time with a margin.
func settleClaims[C, R any](ctx context.Context, limit time.Duration, what string, pending []C,
	check func(C) (stored R, ok, done bool)) ([]R, error) {
	var stored []R
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for len(pending) > 0 {
		left := pending[:0]
		for _, p := range pending {
			r, ok, done := check(p)
			switch {
			case !done:
				left = append(left, p)
			case ok:
				stored = append(stored, r)
			}
		}
		if pending = left; len(pending) == 0 {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("ingest: snapshot %s: %d claims still without an outcome", what, len(pending))
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("ingest: snapshot %s: %w", what, ctx.Err())
		case <-tick.C:
		}
	}
	return stored, nil
}

// copyTo appends the shard's stored votes and pending claims, under its lock.
func (s *voterShard) copyTo(stored, pending []voterVote) ([]voterVote, []voterVote) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stored.zero != nil {
		stored = append(stored, voterVote{id: *s.stored.zero})
	}
	for i := range s.stored.slots {
		if sv := &s.stored.slots[i]; sv.key != (voterKey{}) {
			stored = append(stored, voterVote{key: sv.key, id: sv.vote})
		}
	}
	for k, c := range s.pending {
		pending = append(pending, voterVote{key: k, id: c.vote})
	}
	return stored, pending
}

// settled reports whether the claim p, pending during a copy, is settled,
// and the vote stored for its voter if one is (ok).
func (v *MemoryVoters) settled(p voterVote) (stored voteID, ok, done bool) {
	s := v.shard(p.key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if id, ok := s.stored.get(p.key); ok {
		return id, true, true
	}
	c, pending := s.pending[p.key]
	return voteID{}, false, !pending || c.vote != p.id
}

// storedLen returns the number of stored votes.
func (v *MemoryVoters) storedLen() int {
	n := 0
	for i := range v.shards {
		s := &v.shards[i]
		s.mu.Lock()
		n += s.stored.len()
		s.mu.Unlock()
	}
	return n
}

// LoadSnapshot fills an empty registry from a snapshot.KindVoters section
// of length bytes (VotersSnapshot.Write) and returns the log sequence it
// covers: rebuild the rest with Service.RebuildAfter. On an error the
// registry is left part filled: discard it.
func (v *MemoryVoters) LoadSnapshot(r io.Reader, length uint64) (covered uint64, err error) {
	if v.storedLen() != 0 {
		return 0, errors.New("ingest: load voters: the registry is not empty")
	}
	d := snapshot.NewDecoder(r, length)
	v.reserve(d.U64())
	votes := make([]voterVote, 0, votersChunk)
	buf := make([]byte, 32*votersChunk)
	for {
		n := d.Count(32)
		if n == 0 || n > votersChunk {
			if n > votersChunk {
				return 0, fmt.Errorf("ingest: load voters: a chunk of %d votes", n)
			}
			break
		}
		b := buf[:32*n]
		d.Raw(b)
		votes = votes[:0]
		for i := range n {
			var x voterVote
			copy(x.key[:], b[32*i:])
			copy(x.id[:], b[32*i+16:])
			votes = append(votes, x)
		}
		_ = v.RecordMany(context.Background(), votes)
	}
	covered = d.U64()
	if err := d.Err(); err != nil {
		return 0, fmt.Errorf("ingest: load voters: %w", err)
	}
	return covered, nil
}
