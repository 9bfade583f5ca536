package votelog

import (
	"encoding/binary"
	"fmt"
)

// A message of the log holds one vote, encoded by Record.Append, or a pack:
// several votes of one poll that ingest published together, which the log
// stores, acknowledges and delivers as one message. A pack is its version
// byte (2), the number of votes, and each vote's Record.Append encoding
// after its length. Every vote of a message shares the message's stream
// sequence; its index in the message tells it apart (analytics keys rows by
// both).
//
// Packs exist for throughput: the log's cost is per message, so a batch of
// a thousand votes is one message to store, acknowledge and deliver instead
// of a thousand.

const packVersion = 2

// MaxPack is the most votes one message holds.
const MaxPack = 1000

// AppendMessage appends to b the message holding recs: a single vote's
// encoding for one record, a pack for more. recs must hold 1 to MaxPack
// records; AppendMessage panics otherwise (a programming error).
func AppendMessage(b []byte, recs []Record) []byte {
	switch {
	case len(recs) == 1:
		return recs[0].Append(b)
	case len(recs) == 0 || len(recs) > MaxPack:
		panic(fmt.Sprintf("votelog: a message of %d votes", len(recs)))
	}
	b = append(b, packVersion)
	b = binary.AppendUvarint(b, uint64(len(recs)))
	var scratch []byte
	for i := range recs {
		scratch = recs[i].Append(scratch[:0])
		b = binary.AppendUvarint(b, uint64(len(scratch)))
		b = append(b, scratch...)
	}
	return b
}

// Each decodes the votes of a message in turn into r, as Decode does, and
// calls fn with each one's index in the message. A vote that does not
// decode is passed with its error (wrapping ErrBadRecord) and r emptied:
// readers skip it as they skip a bad single-vote message. A message whose
// framing is broken is one call with index 0 and the error. Each stops at
// the first error fn returns and returns it. It never panics on bad input.
func (d *Decoder) Each(r *Record, data []byte, fn func(i int, err error) error) error {
	if len(data) == 0 || data[0] != packVersion {
		return fn(0, d.Decode(r, data))
	}
	parts, err := framing(data)
	if err != nil {
		*r = Record{Options: r.Options[:0], Voter: r.Voter[:0]}
		return fn(0, err)
	}
	for i, p := range parts {
		if err := fn(i, d.Decode(r, p)); err != nil {
			return err
		}
	}
	return nil
}

// framing splits a pack into its votes' encodings.
func framing(data []byte) ([][]byte, error) {
	dec := decoder{b: data[1:]}
	n := dec.uvarint()
	if dec.err != nil || n == 0 || n > MaxPack {
		return nil, fmt.Errorf("%w: a pack of %d votes", ErrBadRecord, n)
	}
	parts := make([][]byte, 0, n)
	for range n {
		size := dec.uvarint()
		if dec.err != nil || size > uint64(len(dec.b)) {
			return nil, fmt.Errorf("%w: pack truncated", ErrBadRecord)
		}
		parts = append(parts, dec.b[:size])
		dec.b = dec.b[size:]
	}
	if len(dec.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes after a pack", ErrBadRecord, len(dec.b))
	}
	return parts, nil
}

// Size returns at least the length of r's encoding by Append, and at most
// ten bytes more per field: for sizing buffers and packs without encoding.
func (r *Record) Size() int {
	n := 2 + binary.MaxVarintLen64 + binary.MaxVarintLen64 // version, flags, time, option count
	for _, f := range [...]string{r.VoteID, r.PollID, r.Region, r.Country, r.Device, r.Referrer} {
		n += binary.MaxVarintLen64 + len(f)
	}
	for _, o := range r.Options {
		n += binary.MaxVarintLen64 + len(o)
	}
	return n + binary.MaxVarintLen64 + len(r.Voter)
}
