package ingest

import (
	"context"
	"time"
)

// DefaultIdempotencyWindow is how long a retry with the same idempotency
// key is recognised when nothing else is configured.
const DefaultIdempotencyWindow = 24 * time.Hour

// keyState is the answer of Keys.Claim.
type keyState int

const (
	keyClaimed keyState = iota // this attempt holds the key: publish the vote
	keyStored                  // the key's vote is stored, within the window: answer it, publish nothing
	keyBusy                    // another attempt holds the key: wait for its outcome and claim again
	keyLost                    // the registry lost its data: rebuild it before deciding
)

// keyedVote is a stored vote whose ID derives from an idempotency key, and
// the time of the attempt that stored it: the window runs from there.
type keyedVote struct {
	id voteID
	at time.Time
}

// Keys is the registry of idempotency keys: the vote IDs derived from keys
// (voteIDFor) of the votes stored within the idempotency window. pollcast
// recognises a retry by it, on any ingest node and across restarts, however
// long after the first attempt within the window; the log's own duplicate
// window (minutes) only covers resolve's republishing. Past the window a
// key is forgotten: a retry then is a new vote.
//
// Ingest claims a keyed vote's ID before publishing it and finishes the
// claim once the outcome is known. One attempt of a key holds the claim at
// a time — on one node or several sharing the registry — and the others
// wait for its outcome (keyBusy), so a vote is never published twice and
// keyed votes may share a log message with others.
//
// Implementations are safe for concurrent use. An error means the registry
// cannot answer: the vote is refused with 503, never admitted unchecked.
type Keys interface {
	// Claim claims id for an attempt made at now.
	Claim(ctx context.Context, id voteID, now time.Time) (keyState, error)
	// Finish settles a claim taken by Claim: a stored vote is remembered
	// until at (its record's time) plus the window; otherwise the key is
	// free again.
	Finish(ctx context.Context, id voteID, at time.Time, stored bool) error
	// RecordMany remembers stored keyed votes read from the log (rebuilds,
	// the reader of the log); those older than the window are left out, and
	// a vote already remembered keeps its time.
	RecordMany(ctx context.Context, vs []keyedVote) error
}
