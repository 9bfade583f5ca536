package tally

// voterSet is a set of 64-bit voter hashes: open addressing with linear
// probing in a power-of-two table kept at most 3/4 full, growing by
// doubling. It does what a map[uint64]struct{} does for the distinct
// voters of a poll faster (one cache line touched per insert, no hashing
// again of an already uniform hash) and in less memory, 11 to 21 bytes a
// voter: a rebuild at start inserts every voter of the log.
//
// The hashes must be uniformly spread (maphash output): the low bits pick
// the slot. The zero value is an empty set. It is not safe for concurrent
// use.
type voterSet struct {
	slots []uint64 // 0 marks an empty slot
	n     int      // non-zero hashes held
	zero  bool     // the hash 0 is held
}

// minVoterSlots is the size of a set's first table.
const minVoterSlots = 16

// len returns the number of distinct hashes added.
func (s *voterSet) len() int {
	if s.zero {
		return s.n + 1
	}
	return s.n
}

// add adds h.
func (s *voterSet) add(h uint64) {
	if h == 0 {
		s.zero = true
		return
	}
	if 4*(s.n+1) > 3*len(s.slots) {
		s.grow(s.n + 1)
	}
	s.put(h)
}

// has reports whether h was added.
func (s *voterSet) has(h uint64) bool {
	if h == 0 {
		return s.zero
	}
	if len(s.slots) == 0 {
		return false
	}
	mask := uint64(len(s.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case 0:
			return false
		case h:
			return true
		}
	}
}

// put adds a non-zero h to a table with room for it.
func (s *voterSet) put(h uint64) {
	mask := uint64(len(s.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case 0:
			s.slots[i] = h
			s.n++
			return
		case h:
			return
		}
	}
}

// grow moves the hashes to a table with room for n of them.
func (s *voterSet) grow(n int) {
	size := max(minVoterSlots, len(s.slots))
	for 4*n > 3*size {
		size *= 2
	}
	old := s.slots
	s.slots, s.n = make([]uint64, size), 0
	for _, h := range old {
		if h != 0 {
			s.put(h)
		}
	}
}
