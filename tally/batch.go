package tally

import (
	"hash/fnv"
	"log/slog"
	"time"

	"github.com/pollcast/pollcast/votelog"
)

// batcher pre-aggregates the votes of one shard into a Batch. Its maps,
// deltas and record are reused from batch to batch, and it decodes with a
// votelog.Decoder, so folding a vote allocates only the record's vote ID.
type batcher struct {
	batch   Batch
	n       int // messages added since reset, skipped ones included
	counted int // votes counted since reset
	spare   []*PollDelta
	dec     votelog.Decoder
	rec     votelog.Record      // the record add decodes into
	gone    map[string]struct{} // polls of this batch found deleted
	log     *slog.Logger
	deleted func(pollID string) bool
}

func newBatcher(shard int, log *slog.Logger, deleted func(string) bool) *batcher {
	return &batcher{batch: Batch{Shard: shard, Polls: map[string]*PollDelta{}}, gone: map[string]struct{}{}, log: log, deleted: deleted}
}

// reset empties the batch and bases the next one on watermark mark.
func (b *batcher) reset(mark uint64) {
	for id, d := range b.batch.Polls {
		clear(d.Options)
		d.Voters = d.Voters[:0]
		d.Total, d.Anonymous, d.At = 0, 0, time.Time{}
		b.spare = append(b.spare, d)
		delete(b.batch.Polls, id)
	}
	clear(b.gone)
	b.batch.Prev, b.batch.Last = mark, mark
	b.n, b.counted = 0, 0
}

// empty reports whether the batch would not move the watermark.
func (b *batcher) empty() bool { return b.batch.Last == b.batch.Prev }

// add folds the message at stream sequence seq into the batch. See
// addMessage.
func (b *batcher) add(seq uint64, data []byte) {
	b.addMessage(seq, data, &b.rec, nil)
}

// addMessage folds the votes of the message at stream sequence seq (one
// vote, or a pack) into the batch, decoding each into r in turn, and hands
// r to kept, when not nil, after each vote that decoded. A message at or
// below the batch's last sequence (a redelivery) is ignored; a bad vote or
// a vote of a deleted poll is not counted, and the watermark moves past it.
// Whether a poll is deleted is asked once a batch.
func (b *batcher) addMessage(seq uint64, data []byte, r *votelog.Record, kept func(*votelog.Record)) {
	if !b.start(seq) {
		return
	}
	_ = b.dec.Each(r, data, func(i int, err error) error {
		if err != nil {
			b.log.Error("tally: skipping a bad record", "shard", b.batch.Shard, "seq", seq, "index", i, "err", err)
			return nil
		}
		b.fold(r)
		if kept != nil {
			kept(r)
		}
		return nil
	})
}

// start takes the message at stream sequence seq into the batch: it
// reports false for a redelivery (at or below the batch's last sequence),
// which must not be folded.
func (b *batcher) start(seq uint64) bool {
	b.n++
	if seq <= b.batch.Last {
		return false
	}
	b.batch.Last = seq
	return true
}

// advance moves the batch's last sequence up to seq: the messages up to
// there that were not added belong to other shards.
func (b *batcher) advance(seq uint64) {
	b.batch.Last = max(b.batch.Last, seq)
}

// fold counts r, a vote of the message start took last, in the batch
// unless its poll is deleted.
func (b *batcher) fold(r *votelog.Record) {
	d, ok := b.batch.Polls[r.PollID]
	if !ok {
		if _, gone := b.gone[r.PollID]; gone {
			return
		}
		if b.deleted(r.PollID) {
			b.gone[r.PollID] = struct{}{}
			return
		}
		if n := len(b.spare); n > 0 {
			d, b.spare = b.spare[n-1], b.spare[:n-1]
		} else {
			d = &PollDelta{Options: map[string]int64{}}
		}
		b.batch.Polls[r.PollID] = d
	}
	d.Total++
	for _, o := range r.Options {
		d.Options[o]++
	}
	if len(r.Voter) > 0 {
		d.Voters = append(d.Voters, voterKey(r.Voter))
	} else {
		d.Anonymous++
	}
	if r.Time.After(d.At) {
		d.At = r.Time
	}
	b.counted++
}

// voterKey returns the 16-byte form of a voter key. Ingest writes keys of
// 16 bytes; a longer one (from another writer) is hashed down rather than
// cut, so distinct long keys stay distinct.
func voterKey(v []byte) [16]byte {
	var k [16]byte
	if len(v) <= len(k) {
		copy(k[:], v)
		return k
	}
	h := fnv.New128a()
	_, _ = h.Write(v)
	h.Sum(k[:0])
	return k
}
