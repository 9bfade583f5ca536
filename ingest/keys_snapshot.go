package ingest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/pollcast/pollcast/internal/snapshot"
	"github.com/pollcast/pollcast/votelog"
)

// A snapshot of the memory key registry must hold the key of every keyed
// vote the log holds up to the sequence it claims to cover, with the same
// discipline as the voters' (see voters_snapshot.go):
//
//  1. SnapshotKeys reads the log's last sequence, L, before anything is
//     copied: the snapshot covers the log up to L.
//  2. Write freezes the registry: the generations as they are, and the
//     claims pending. A keyed vote at or below L was published after its
//     key was claimed, so its key is in the generations or its claim is
//     pending. The generations are then written without the lock: keys
//     stored meanwhile wait aside (MemoryKeys.frozen), so nothing writes
//     to them, and keyed votes wait only while the frozen state is taken
//     and given back.
//  3. Write then waits for each pending claim copied to be settled and
//     writes the keys stored by them. A claim that stays unsettled past
//     PublishTimeout and a margin fails the snapshot: it is tried again at
//     the next interval.
//
// A restart loads the registry and reads the log after L (RebuildAfter),
// which records the keys of the votes that followed.

// keysChunk is how many keys a snapshot writes or loads at a time.
const keysChunk = 1 << 16

// keyRecordLen is a key's size in a snapshot: vote ID, then time.
const keyRecordLen = 24

// KeysSnapshot is a snapshot of the memory key registry on its way to a
// file: made by SnapshotKeys, written once by Write.
type KeysSnapshot struct {
	s       *Service
	mk      *MemoryKeys
	covered uint64
}

// SnapshotKeys begins a snapshot of the memory key registry: it notes the
// log's last sequence, which the snapshot will cover. A durable registry
// needs none: ErrNotSnapshotted.
func (s *Service) SnapshotKeys(ctx context.Context) (*KeysSnapshot, error) {
	mk, ok := s.keys.(*MemoryKeys)
	if !ok {
		return nil, ErrNotSnapshotted
	}
	last, err := votelog.LastSeq(ctx, s.js)
	if err != nil {
		return nil, fmt.Errorf("ingest: snapshot keys: %w", err)
	}
	return &KeysSnapshot{s: s, mk: mk, covered: last}, nil
}

// Covered returns the log sequence the snapshot covers: after a restart
// from it, the keys are rebuilt from the log after that sequence
// (RebuildAfter).
func (ks *KeysSnapshot) Covered() uint64 { return ks.covered }

// Write writes the snapshot as the payload of a snapshot.KindVoteIDs
// section: the number of generations, then per generation its start
// (Unix ns) and its keys (a count, then per key the vote ID and the vote's
// time in Unix ns, 24 bytes), the keys of the claims settled during the
// copy last, as a generation of their own; then the sequence covered.
func (ks *KeysSnapshot) Write(ctx context.Context, w io.Writer) error {
	gens, pending, frozeAt, err := ks.mk.freeze()
	if err != nil {
		return err
	}
	e := snapshot.NewEncoder(w)
	buf := make([]byte, 0, keyRecordLen*keysChunk)
	flush := func() {
		e.Raw(buf)
		buf = buf[:0]
	}
	put := func(id voteID, at int64) {
		buf = append(buf, id[:]...)
		buf = binary.LittleEndian.AppendUint64(buf, uint64(at))
		if len(buf) == cap(buf) {
			flush()
		}
	}
	func() {
		defer ks.mk.thaw()
		e.U64(uint64(len(gens)) + 1)
		for _, g := range gens {
			e.U64(uint64(g.start))
			e.U64(uint64(len(g.ids)))
			for id, at := range g.ids {
				put(id, at)
			}
			flush()
		}
	}()
	settled, err := ks.settle(ctx, pending)
	if err != nil {
		return err
	}
	e.U64(uint64(frozeAt))
	e.U64(uint64(len(settled)))
	for _, kv := range settled {
		put(kv.id, kv.at.UnixNano())
	}
	flush()
	e.U64(ks.covered)
	return e.Err()
}

// pendingKey is a claim seen by a snapshot: its key and its number.
type pendingKey struct {
	id    voteID
	claim uint64
}

// settle waits until each of the claims pending during the copy is settled
// and returns the keys they stored.
func (ks *KeysSnapshot) settle(ctx context.Context, pending []pendingKey) ([]keyedVote, error) {
	return settleClaims(ctx, ks.s.cfg.PublishTimeout+2*time.Second, "keys", pending,
		func(p pendingKey) (keyedVote, bool, bool) {
			at, ok, done := ks.mk.settled(p)
			return keyedVote{id: p.id, at: time.Unix(0, at)}, ok, done
		})
}

// errFrozen is returned by freeze while another snapshot reads the
// generations.
var errFrozen = errors.New("ingest: snapshot keys: another snapshot is being written")

// freeze returns the generations, which stay unchanged until thaw, the
// claims pending, and the time it froze them.
func (k *MemoryKeys) freeze() (gens []keyGen, pending []pendingKey, at int64, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.frozen != nil {
		return nil, nil, 0, errFrozen
	}
	k.frozen = map[voteID]int64{}
	for id, claim := range k.pending {
		pending = append(pending, pendingKey{id, claim})
	}
	return append([]keyGen(nil), k.gens...), pending, time.Now().UnixNano(), nil
}

// thaw ends a freeze: the keys stored meanwhile join the generations.
func (k *MemoryKeys) thaw() {
	k.mu.Lock()
	defer k.mu.Unlock()
	frozen := k.frozen
	k.frozen = nil
	now := time.Now().UnixNano()
	for id, at := range frozen {
		k.add(id, at, now)
	}
}

// settled reports whether the claim p, pending during a freeze, is
// settled, and the time of the vote it stored if it did (ok).
func (k *MemoryKeys) settled(p pendingKey) (at int64, ok, done bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if claim, pending := k.pending[p.id]; pending && claim == p.claim {
		return 0, false, false
	}
	at, ok = k.lookup(p.id)
	return at, ok, true
}

// LoadSnapshot fills an empty registry from a snapshot.KindVoteIDs section
// of length bytes (KeysSnapshot.Write) and returns the log sequence it
// covers: rebuild the rest with Service.RebuildAfter. Keys already past
// the window are left out. On an error the registry is left part filled:
// discard it.
func (k *MemoryKeys) LoadSnapshot(r io.Reader, length uint64) (covered uint64, err error) {
	if k.Len() != 0 {
		return 0, errors.New("ingest: load keys: the registry is not empty")
	}
	now := time.Now().UnixNano()
	d := snapshot.NewDecoder(r, length)
	buf := make([]byte, keyRecordLen*keysChunk)
	k.mu.Lock()
	defer k.mu.Unlock()
	for range d.Count(16) {
		g := keyGen{start: int64(d.U64()), ids: map[voteID]int64{}}
		for n := d.Count(keyRecordLen); n > 0; {
			chunk := buf[:keyRecordLen*min(n, keysChunk)]
			d.Raw(chunk)
			for b := chunk; len(b) > 0; b = b[keyRecordLen:] {
				id, at := voteID(b[:16]), int64(binary.LittleEndian.Uint64(b[16:]))
				if now-at < int64(k.window) {
					g.ids[id] = at
				}
			}
			n -= len(chunk) / keyRecordLen
		}
		if len(g.ids) == 0 {
			continue
		}
		if last := len(k.gens) - 1; last >= 0 && g.start < k.gens[last].start {
			g.start = k.gens[last].start // oldest first, as add drops them
		}
		k.gens = append(k.gens, g)
	}
	covered = d.U64()
	if err := d.Err(); err != nil {
		return 0, fmt.Errorf("ingest: load keys: %w", err)
	}
	return covered, nil
}
