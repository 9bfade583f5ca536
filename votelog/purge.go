package votelog

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Erasure of a poll. The log is append-only for everyone but this: a purge
// removes every message on the poll's subject. Readers may hold messages
// they read before the purge and act on them after it (the analytics sink
// batches rows for up to a second), so whoever erases what readers made of
// the poll's votes first publishes a mark on the poll's subject
// (PublishPurgeMark) and waits until the reader has handled it: a reader
// follows the log in order, so it has then handled every vote of the poll
// stored before the mark, and nothing of them is still on its way.

// PurgeMarkPrefix starts the VoteID of a purge mark.
const PurgeMarkPrefix = "purge-mark-"

// ErrBadPollID is returned for a poll ID that cannot be a subject token.
var ErrBadPollID = errors.New("votelog: poll ID cannot be a subject token")

func checkPollID(pollID string) error {
	if pollID == "" || strings.ContainsAny(pollID, ".*> \t\r\n") {
		return fmt.Errorf("%w: %q", ErrBadPollID, pollID)
	}
	return nil
}

// PublishPurgeMark publishes a purge mark of a poll on its subject (shards
// is the shard count of the log) and returns the mark's stream sequence.
// The mark is a record of the poll with no options and no voter, its
// VoteID PurgeMarkPrefix and a number: a reader takes it for a vote of the
// poll, which is deleted by then, so the tally skips it like any vote of a
// deleted poll. PurgePoll removes it with the poll's votes.
func PublishPurgeMark(ctx context.Context, js jetstream.JetStream, shards int, pollID string, now time.Time) (uint64, error) {
	if err := checkPollID(pollID); err != nil {
		return 0, err
	}
	r := Record{VoteID: PurgeMarkPrefix + strconv.FormatInt(now.UnixNano(), 36), PollID: pollID, Time: now.UTC()}
	ack, err := js.Publish(ctx, VoteSubject(Shard(pollID, shards), pollID), r.Append(nil))
	if err != nil {
		return 0, fmt.Errorf("votelog: publish purge mark: %w", err)
	}
	return ack.Sequence, nil
}

// PurgePoll removes every message of a poll from the log (shards is the
// shard count of the log). It is idempotent: a poll with nothing left in
// the log is purged without error. Other polls' messages, and the stream's
// sequence numbers, are untouched.
func PurgePoll(ctx context.Context, js jetstream.JetStream, shards int, pollID string) error {
	if err := checkPollID(pollID); err != nil {
		return err
	}
	s, err := js.Stream(ctx, StreamName)
	if err != nil {
		return fmt.Errorf("votelog: purge poll: %w", err)
	}
	if err := s.Purge(ctx, jetstream.WithPurgeSubject(VoteSubject(Shard(pollID, shards), pollID))); err != nil {
		return fmt.Errorf("votelog: purge poll: %w", err)
	}
	return nil
}

// pollReadIdle ends a read of a poll's messages that gets none for that
// long: the rest was removed meanwhile (a purge running at the same time).
const pollReadIdle = 5 * time.Second

// EachOfPoll calls fn with the data of every message of a poll in the log
// (shards is the shard count of the log), in log order, up to the newest
// one when it was called or later. It stops at fn's first error and
// returns it. The data is fn's only during the call.
func EachOfPoll(ctx context.Context, js jetstream.JetStream, shards int, pollID string, fn func(data []byte) error) error {
	if err := checkPollID(pollID); err != nil {
		return err
	}
	subject := VoteSubject(Shard(pollID, shards), pollID)
	s, err := js.Stream(ctx, StreamName)
	if err != nil {
		return fmt.Errorf("votelog: read poll: %w", err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		return fmt.Errorf("votelog: read poll: %w", err)
	}
	if info.State.Subjects[subject] == 0 {
		return nil
	}
	cons, err := Reader(ctx, js, 0, subject)
	if err != nil {
		return fmt.Errorf("votelog: read poll: %w", err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(1024))
	if err != nil {
		return fmt.Errorf("votelog: read poll: %w", err)
	}
	defer it.Stop()
	defer context.AfterFunc(ctx, it.Stop)()
	for {
		msg, err := it.Next(jetstream.NextMaxWait(pollReadIdle))
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("votelog: read poll: %w", err)
		}
		if err := fn(msg.Data()); err != nil {
			return err
		}
		meta, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("votelog: read poll: %w", err)
		}
		if meta.NumPending == 0 {
			return nil
		}
	}
}
