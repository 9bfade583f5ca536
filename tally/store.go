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
	// Voters are the voter keys of the votes, one per vote with a voter
	// (keyed hashes, at most 16 bytes are used). Votes without a voter
	// count as one distinct voter each and are not listed here.
	Voters [][16]byte
	// Anonymous counts the votes without a voter key.
	Anonymous int64
	// At is the time of the newest vote.
	At time.Time
}

// ErrFenced is returned by Apply when the shard's watermark is not the
// batch's Prev. Nothing was applied; the worker reloads the watermark.
var ErrFenced = errors.New("tally: batch fenced off: the shard's watermark moved")

// Store holds the counters of every poll and the watermark of every shard.
//
// Apply is called by the one worker that owns a shard, batches of a shard
// in log order; workers of different shards call it concurrently. Counts is
// called by any number of request goroutines at any time. Implementations
// must be safe for that concurrency.
type Store interface {
	// Watermark returns the stream sequence the shard has applied up to.
	// Zero means nothing was applied: rebuild the shard from the start of the log.
	Watermark(ctx context.Context, shard int) (uint64, error)
	// Apply applies b atomically: the counters of every poll in it and the
	// shard's new watermark b.Last, or nothing. It returns ErrFenced when
	// the shard's watermark is not b.Prev.
	Apply(ctx context.Context, b Batch) error
	// Counts returns the counts of a poll. An unknown poll has zero counts
	// (PollID set, Options empty but non-nil), not an error.
	Counts(ctx context.Context, pollID string) (poll.Counts, error)
	// DeletePoll forgets the counts of a deleted poll.
	DeletePoll(ctx context.Context, pollID string) error
	// Ping checks that the store answers.
	Ping(ctx context.Context) error
}
