package tally

import (
	"context"
	"errors"
	"time"

	"github.com/pollcast/pollcast/poll"
)

// Batch is what one shard worker applies at once: the votes of the log
// from Prev+1 to Last, pre-aggregated per poll.
type Batch struct {
	Shard int
	// Prev is the watermark the batch was computed against. The store
	// refuses the batch (ErrFenced) when its watermark is not Prev: another
	// worker moved the shard on, and applying would count votes twice.
	Prev uint64
	// Last is the stream sequence of the last vote in the batch: the new watermark.
	Last uint64
	// Polls holds the increments per poll ID. It may be empty: a batch of
	// skipped votes still moves the watermark.
	Polls map[string]*PollDelta
}

// PollDelta is the increment of one poll in a batch.
type PollDelta struct {
	// Total is the number of votes (ballots).
	Total int64
	// Options maps option ID to added votes.
	Options map[string]int64
	// Voters are the voter keys of the votes, one per vote with a voter,
	// repeats included: the store counts distinct keys per poll. They are
	// votelog.Record.Voter, 16-byte keyed hashes (a longer key is hashed to
	// 16 bytes). Votes without a voter are not listed here but in Anonymous.
	Voters [][16]byte
	// Anonymous counts the votes without a voter key; each is one more
	// distinct voter.
	Anonymous int64
	// At is the time of the newest vote.
	At time.Time
}

// ErrFenced is returned by Apply when the shard's watermark is not the
// batch's Prev. Nothing was applied; the worker reloads the watermark.
var ErrFenced = errors.New("tally: batch fenced off: the shard's watermark moved")

// Store holds the counters of every poll and the watermark of every shard.
//
// Apply is called by the worker that owns a shard, batches of a shard in
// log order; workers of different shards call it concurrently, and two
// workers may briefly both believe they own a shard (a restart, a lost
// lease): fencing on Prev makes exactly one of them win. Counts is called
// by any number of request goroutines at any time, and by the workers to
// publish. Implementations must be safe for that concurrency.
//
// Errors other than ErrFenced mean "try again": the tally retries the same
// batch with backoff and never skips it.
type Store interface {
	// Watermark returns the stream sequence the shard has applied up to.
	// Zero means nothing was applied: rebuild the shard from the start of
	// the log.
	Watermark(ctx context.Context, shard int) (uint64, error)
	// Apply applies b atomically: the counters of every poll in it and the
	// shard's new watermark b.Last, or nothing. It returns ErrFenced, and
	// changes nothing, when the shard's watermark is not b.Prev. A batch
	// without polls only moves the watermark. Apply must not keep b or its
	// maps and slices: the caller reuses them once it returns.
	Apply(ctx context.Context, b Batch) error
	// Counts returns a copy of the counts of a poll: Total and Options
	// summed over applied votes, Voters the distinct voter keys plus the
	// anonymous votes, Version the votes applied so far (it grows with
	// every change), UpdatedAt the newest applied vote's time. An unknown
	// or deleted poll has zero counts (PollID set, Options empty but
	// non-nil), not an error.
	Counts(ctx context.Context, pollID string) (poll.Counts, error)
	// HasVoter reports whether a vote with the voter key voter (as in
	// PollDelta.Voters) was applied to the poll: it tells who voted in a
	// poll whose voters ingest does not remember (see ingest.Service). An
	// unknown or deleted poll has no voters. The memory store answers
	// from 64-bit hashes of the keys: a wrong yes is as likely as two
	// voters counted as one (see MemoryStore).
	HasVoter(ctx context.Context, pollID string, voter [16]byte) (bool, error)
	// DeletePoll forgets the counts and voters of a deleted poll; the web
	// layer calls it once the catalog marks the poll deleted, after which
	// the tally skips its votes. Votes of the poll in a batch applied after
	// it (read before the mark, by any tally process) are not counted
	// either: the catalog's mark and DeletePoll together erase a poll's
	// counts for good. Deleting an unknown poll is not an error.
	DeletePoll(ctx context.Context, pollID string) error
	// Ping checks that the store answers, for readiness.
	Ping(ctx context.Context) error
	// ResetShard forgets, in one atomic step, the counters and voters of
	// every poll of the shard and the shard's watermark (back to zero), if
	// the watermark is past end, the log's last sequence: the log lost its
	// tail (restored from an older backup, or a new log beside an old
	// store) and the shard is to be folded again from the start of the log.
	// It reports whether it reset. A shard at or below end is left alone,
	// so a reset decided on an old reading of the log never undoes a
	// rebuild. A batch computed before a reset is fenced off (ErrFenced).
	// The tally calls it, with Apply of other shards running.
	ResetShard(ctx context.Context, shard int, end uint64) (bool, error)
}
