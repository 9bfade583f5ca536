package tally

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"
	"unsafe"

	"github.com/pollcast/pollcast/internal/snapshot"
)

// voterSeed keys the 64-bit hashes of voter keys a MemoryStore keeps. It is
// saved with a snapshot, since the hashes mean nothing under another seed
// (which is why it is not a maphash.Seed).
type voterSeed struct{ a, b uint64 }

func newVoterSeed() voterSeed {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return voterSeed{binary.LittleEndian.Uint64(b[:8]), binary.LittleEndian.Uint64(b[8:])}
}

// hash returns the keyed hash of a voter key: two rounds of a bijective
// mixer, so that keys differing in their first half never collide and
// others do about once in 2⁶⁴.
func (s voterSeed) hash(k [16]byte) uint64 {
	x := mix64(binary.LittleEndian.Uint64(k[:8]) ^ s.a)
	return mix64(x ^ binary.LittleEndian.Uint64(k[8:]) ^ s.b)
}

// mix64 is MurmurHash3's 64-bit finaliser, a bijection that spreads every
// input bit over the output.
func mix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// StoreSnapshot is a consistent copy of a MemoryStore: the counters of
// every poll are those of the votes up to each shard's watermark, no more,
// no less.
type StoreSnapshot struct {
	seed    voterSeed
	marks   map[int]uint64
	deleted []string
	polls   []pollCopy
}

type pollCopy struct {
	id                        string
	shard                     int
	total, anonymous, version int64
	options                   map[string]int64
	slots                     []uint64 // the voter set's table, empty slots included
	zero                      bool
	updatedAt                 time.Time
}

// Snapshot copies the store. Batches, resets and deletions wait while it
// copies (each poll's counters and voter table, a memory copy); Counts and
// HasVoter wait only while their poll is copied. Encoding and writing the
// copy (Write) happen without any lock.
func (s *MemoryStore) Snapshot() *StoreSnapshot {
	s.snap.Lock()
	defer s.snap.Unlock()
	ss := &StoreSnapshot{seed: s.seed, marks: map[int]uint64{}}
	s.marks.Range(func(k, v any) bool {
		sh := v.(*memShard)
		sh.mu.Lock()
		ss.marks[k.(int)] = sh.mark
		sh.mu.Unlock()
		return true
	})
	s.mu.RLock()
	ss.deleted = slices.Collect(maps.Keys(s.deleted))
	ps := make(map[string]*memPoll, len(s.polls))
	maps.Copy(ps, s.polls)
	s.mu.RUnlock()
	ss.polls = make([]pollCopy, 0, len(ps))
	for id, p := range ps {
		p.mu.Lock()
		ss.polls = append(ss.polls, pollCopy{
			id: id, shard: p.shard, total: p.total, anonymous: p.anonymous, version: p.version,
			options: maps.Clone(p.options), slots: slices.Clone(p.voters.slots), zero: p.voters.zero,
			updatedAt: p.updatedAt,
		})
		p.mu.Unlock()
	}
	return ss
}

// Watermark returns the shard's watermark in the copy.
func (ss *StoreSnapshot) Watermark(shard int) uint64 { return ss.marks[shard] }

// Write writes the copy, once, as the payload of a snapshot.KindTally section.
//
// Layout: seed a, b; shards, then per shard: number, watermark; deleted
// polls, then each ID; polls, then per poll: ID, shard (whose batches
// made it: what ResetShard forgets), total, anonymous, version, updated-at
// (Unix ns), zero-hash flag, options (ID, votes each), voter hashes
// (count, then the non-zero hashes).
func (ss *StoreSnapshot) Write(w io.Writer) error {
	e := snapshot.NewEncoder(w)
	e.U64(ss.seed.a)
	e.U64(ss.seed.b)
	e.U64(uint64(len(ss.marks)))
	for _, shard := range slices.Sorted(maps.Keys(ss.marks)) {
		e.U64(uint64(shard))
		e.U64(ss.marks[shard])
	}
	e.U64(uint64(len(ss.deleted)))
	for _, id := range ss.deleted {
		e.String(id)
	}
	e.U64(uint64(len(ss.polls)))
	buf := make([]uint64, 0, 8192)
	for i := range ss.polls {
		p := &ss.polls[i]
		e.String(p.id)
		e.U64(uint64(p.shard))
		e.U64(uint64(p.total))
		e.U64(uint64(p.anonymous))
		e.U64(uint64(p.version))
		e.U64(unixNano(p.updatedAt))
		e.U64(map[bool]uint64{false: 0, true: 1}[p.zero])
		e.U64(uint64(len(p.options)))
		for _, o := range slices.Sorted(maps.Keys(p.options)) {
			e.String(o)
			e.U64(uint64(p.options[o]))
		}
		n := 0
		for _, h := range p.slots {
			if h != 0 {
				n++
			}
		}
		e.U64(uint64(n))
		for _, h := range p.slots {
			if h == 0 {
				continue
			}
			if buf = append(buf, h); len(buf) == cap(buf) {
				e.Raw(u64Bytes(buf))
				buf = buf[:0]
			}
		}
		e.Raw(u64Bytes(buf))
		buf = buf[:0]
		p.slots = nil // written: let it go
	}
	return e.Err()
}

// unixNano is t in Unix nanoseconds, 0 for the zero time.
func unixNano(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	return uint64(t.UnixNano())
}

// u64Bytes returns the memory of s as bytes: the hashes go to the file as
// they are in memory (little-endian on the platforms pollcast builds for;
// see isLittleEndian).
func u64Bytes(s []uint64) []byte {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), 8*len(s))
}

var isLittleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// ErrNotEmpty is returned by LoadSnapshot for a store that has applied
// anything.
var ErrNotEmpty = errors.New("tally: load a snapshot: the store is not empty")

// LoadSnapshot fills an empty store from a snapshot.KindTally section of
// length bytes that Write wrote, leaving out the polls drop reports
// (deleted since; nil keeps all). On an error the store is left part
// filled: discard it.
func (s *MemoryStore) LoadSnapshot(r io.Reader, length uint64, drop func(pollID string) bool) error {
	if !isLittleEndian {
		return errors.New("tally: load a snapshot: big-endian platforms are not supported")
	}
	s.mu.Lock()
	empty := len(s.polls) == 0 && len(s.deleted) == 0
	s.mu.Unlock()
	if !empty {
		return ErrNotEmpty
	}
	d := snapshot.NewDecoder(r, length)
	s.seed = voterSeed{d.U64(), d.U64()}
	for range d.Count(16) {
		shard, mark := d.U64(), d.U64()
		s.shard(int(shard)).mark = mark
	}
	for range d.Count(8) {
		s.deleted[d.String()] = struct{}{}
	}
	for range d.Count(64) {
		id := d.String()
		p := &memPoll{shard: int(d.U64()), options: map[string]int64{}}
		p.total, p.anonymous, p.version = int64(d.U64()), int64(d.U64()), int64(d.U64())
		if at := d.U64(); at != 0 {
			p.updatedAt = time.Unix(0, int64(at)).UTC()
		}
		p.voters.zero = d.U64() == 1
		for range d.Count(16) {
			o := d.String()
			p.options[o] = int64(d.U64())
		}
		n := d.Count(8)
		hashes := make([]uint64, min(n, 1<<16))
		if n > 0 {
			p.voters.grow(n)
		}
		for n > 0 {
			chunk := hashes[:min(n, len(hashes))]
			d.Raw(u64Bytes(chunk))
			for _, h := range chunk {
				p.voters.put(h)
			}
			n -= len(chunk)
		}
		if drop == nil || !drop(id) {
			s.polls[id] = p
		}
	}
	if err := d.Err(); err != nil {
		return fmt.Errorf("tally: load a snapshot: %w", err)
	}
	return nil
}
