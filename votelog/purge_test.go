package votelog_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pollcast/pollcast/internal/testsvc"
	"github.com/pollcast/pollcast/votelog"
)

const shards = 4

// publish stores one vote of poll in the log.
func publish(t testing.TB, l *testsvc.Log, pollID, voteID string) {
	t.Helper()
	r := votelog.Record{VoteID: voteID, PollID: pollID, Options: []string{"a"}, Voter: []byte("0123456789abcdef"), Time: time.Now()}
	if _, err := l.JS.Publish(context.Background(), votelog.VoteSubject(votelog.Shard(pollID, shards), pollID), r.Append(nil)); err != nil {
		t.Fatal(err)
	}
}

// voteIDs returns the vote IDs of a poll's messages in the log.
func voteIDs(t testing.TB, l *testsvc.Log, pollID string) []string {
	t.Helper()
	var ids []string
	err := votelog.EachOfPoll(context.Background(), l.JS, shards, pollID, func(data []byte) error {
		r, err := votelog.Decode(data)
		if err != nil {
			return err
		}
		ids = append(ids, r.VoteID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// TestPurgePoll: a purge removes every message of the poll, the mark
// included, and nothing of another poll, even one of the same shard; a
// second purge is harmless.
func TestPurgePoll(t *testing.T) {
	ctx := context.Background()
	l := testsvc.StartLog(t)
	gone := "gone-poll"
	var sameShard string // another poll of gone's shard
	for i := 0; sameShard == ""; i++ {
		if id := "kept-" + string(rune('a'+i%26)) + string(rune('a'+i/26)); votelog.Shard(id, shards) == votelog.Shard(gone, shards) {
			sameShard = id
		}
	}
	publish(t, l, gone, "g1")
	publish(t, l, sameShard, "k1")
	publish(t, l, "other-shard-or-not", "o1")
	publish(t, l, gone, "g2")
	seq, err := votelog.PublishPurgeMark(ctx, l.JS, shards, gone, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if last, _ := votelog.LastSeq(ctx, l.JS); seq != last || seq != 5 {
		t.Fatalf("mark at %d, log ends at %d; want both 5", seq, last)
	}
	ids := voteIDs(t, l, gone)
	if len(ids) != 3 || ids[0] != "g1" || ids[1] != "g2" {
		t.Fatalf("the poll's messages: %q", ids)
	}
	mark, err := votelog.Decode(func() []byte {
		s, _ := l.JS.Stream(ctx, votelog.StreamName)
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		return m.Data
	}())
	if err != nil || !strings.HasPrefix(mark.VoteID, votelog.PurgeMarkPrefix) || mark.PollID != gone ||
		len(mark.Options) != 0 || len(mark.Voter) != 0 {
		t.Fatalf("mark %+v, %v", mark, err)
	}

	for range 2 { // idempotent
		if err := votelog.PurgePoll(ctx, l.JS, shards, gone); err != nil {
			t.Fatal(err)
		}
		if ids := voteIDs(t, l, gone); len(ids) != 0 {
			t.Fatalf("after the purge the log still holds %q", ids)
		}
		if ids := voteIDs(t, l, sameShard); !slices.Equal(ids, []string{"k1"}) {
			t.Fatalf("a poll of the same shard: %q", ids)
		}
		if ids := voteIDs(t, l, "other-shard-or-not"); !slices.Equal(ids, []string{"o1"}) {
			t.Fatalf("another poll: %q", ids)
		}
	}
	// Sequences go on: readers resuming after a watermark are not confused.
	publish(t, l, sameShard, "k2")
	if last, _ := votelog.LastSeq(ctx, l.JS); last != 6 {
		t.Fatalf("log ends at %d after a purge and a vote, want 6", last)
	}
}

func TestPurgeRejectsBadPollIDs(t *testing.T) {
	ctx := context.Background()
	l := testsvc.StartLog(t)
	publish(t, l, "kept", "k1")
	for _, id := range []string{"", "a.b", "votes.>", "*", "a b"} {
		if err := votelog.PurgePoll(ctx, l.JS, shards, id); !errors.Is(err, votelog.ErrBadPollID) {
			t.Errorf("PurgePoll(%q) = %v, want ErrBadPollID", id, err)
		}
		if _, err := votelog.PublishPurgeMark(ctx, l.JS, shards, id, time.Now()); !errors.Is(err, votelog.ErrBadPollID) {
			t.Errorf("PublishPurgeMark(%q) = %v, want ErrBadPollID", id, err)
		}
	}
	if ids := voteIDs(t, l, "kept"); len(ids) != 1 {
		t.Fatalf("the log lost %q", ids)
	}
}
