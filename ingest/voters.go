package ingest

import (
	"context"
)

// voterKey is the keyed hash that stands for one voter of one poll.
type voterKey [16]byte

// voteID is the binary form of a vote ID.
type voteID [16]byte

// voterVote is a stored vote and its voter.
type voterVote struct {
	key voterKey
	id  voteID
}

// claimResult is the answer of Voters.Claim.
type claimResult int

const (
	claimed     claimResult = iota // the voter is reserved for this vote: publish it
	claimStored                    // this very vote (same id) is already stored: answer as before
	claimTaken                     // another vote of the voter holds the claim
	claimLost                      // the registry lost its data: rebuild it before deciding
)

// Voters is the dedupe registry: which voter voted in which poll.
//
// Ingest takes a claim before it publishes a vote of a deduplicated poll,
// and finishes it once the outcome is known: a stored vote commits the
// claim, a failed publish releases it so the voter may try again. Two
// concurrent votes of one voter — on one ingest node or several sharing
// the registry — cannot both claim; a retry of the same vote (same vote ID,
// from the same idempotency key) shares the claim and, once the vote is
// stored, learns so (claimStored) instead of publishing again.
//
// Implementations are safe for concurrent use. An error means the registry
// cannot answer: the vote is refused with 503, never accepted unchecked.
type Voters interface {
	Claim(ctx context.Context, k voterKey, id voteID) (claimResult, error)
	Finish(ctx context.Context, k voterKey, id voteID, stored bool) error
	// Record notes a stored vote without a claim (polls without dedupe,
	// rebuilds); the first stored vote of a voter stays the one remembered.
	Record(ctx context.Context, k voterKey, id voteID) error
	// RecordMany is Record for several votes, in order, at once.
	RecordMany(ctx context.Context, vs []voterVote) error
	// Voted reports whether a stored vote of the voter is known.
	Voted(ctx context.Context, k voterKey) (bool, error)
	// Durable reports whether the registry outlives the process; one that
	// does not is rebuilt from the log at start.
	Durable() bool
	// Complete reports whether a durable registry still holds every vote
	// of the log: false once its store lost its data (a FLUSHALL, a Redis
	// without persistence restarted) until MarkComplete after a rebuild.
	// Claim answers claimLost meanwhile where it can tell at once.
	Complete(ctx context.Context) (bool, error)
	MarkComplete(ctx context.Context) error
	// Forget removes voters, their stored votes and their claims: the
	// erasure of a purged poll, whose voters the log names (keys are keyed
	// hashes of poll and voter, so a poll's voters are found through its
	// votes). Unknown voters are no error. A claim of a vote still on its
	// way when its voter is forgotten may be committed after: the poll is
	// deleted by then, and a second purge forgets it.
	Forget(ctx context.Context, ks []voterKey) error
}
