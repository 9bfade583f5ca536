package ingest_test

import (
	"context"
	"errors"
	"net/netip"
	"testing"

	"github.com/pollcast/pollcast/ingest"
	"github.com/pollcast/pollcast/internal/testsvc"
	"github.com/pollcast/pollcast/poll"
	"github.com/pollcast/pollcast/votelog"
)

// TestPurgeLog: a purge takes the poll's votes out of the log and its
// voters out of the registry (memory and Redis), so the same voter is a
// new voter to it; another poll's votes and voters stay. A second purge
// changes nothing.
func TestPurgeLog(t *testing.T) {
	for _, tc := range []struct {
		name   string
		voters func(t *testing.T) ingest.Voters
	}{
		{"memory", func(*testing.T) ingest.Voters { return ingest.NewMemoryVoters() }},
		{"redis", func(t *testing.T) ingest.Voters {
			rdb, prefix := testsvc.Redis(t)
			v, err := ingest.NewRedisVoters(rdb, ingest.RedisVotersConfig{Prefix: prefix})
			if err != nil {
				t.Fatal(err)
			}
			if err := v.MarkComplete(context.Background()); err != nil {
				t.Fatal(err)
			}
			return v
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t)
			s, err := ingest.New(e.nc, e.cat, ingest.Config{Shards: 4, Voters: tc.voters(t)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(s.Close)
			if err := s.Rebuild(ctx); err != nil {
				t.Fatal(err)
			}
			gone, kept := e.poll(t, poll.DedupeDevice), e.poll(t, poll.DedupeDevice)
			for _, p := range []*poll.Poll{gone, kept} {
				for _, voter := range []string{"d1", "d2"} {
					if _, err := s.Vote(ctx, ingest.Request{PollID: p.ID, Options: []string{"a"}, Voter: voter}); err != nil {
						t.Fatal(err)
					}
				}
			}
			batch := s.VoteBatch(ctx, []ingest.Request{ // a pack of votes in one message
				{PollID: gone.ID, Options: []string{"b"}, Voter: "d3"},
				{PollID: gone.ID, Options: []string{"b"}, Voter: "d4"},
			})
			for _, o := range batch {
				if o.Err != nil {
					t.Fatal(o.Err)
				}
			}
			if _, err := s.PurgeMark(ctx, gone.ID); err != nil {
				t.Fatal(err)
			}
			for range 2 {
				if err := s.PurgeLog(ctx, gone.ID); err != nil {
					t.Fatal(err)
				}
				if n := logVotes(t, e, gone.ID); n != 0 {
					t.Fatalf("%d messages of the purged poll in the log", n)
				}
				if n := logVotes(t, e, kept.ID); n != 2 {
					t.Fatalf("%d messages of the other poll in the log, want 2", n)
				}
				for _, voter := range []string{"d1", "d2", "d3", "d4"} {
					if s.HasVoted(ctx, gone, voter, netip.Addr{}) {
						t.Fatalf("the registry still knows %s voted in the purged poll", voter)
					}
				}
				for _, voter := range []string{"d1", "d2"} {
					if !s.HasVoted(ctx, kept, voter, netip.Addr{}) {
						t.Fatalf("the registry forgot %s in the other poll", voter)
					}
				}
			}
			// The poll is not deleted in this test's catalog: its forgotten
			// voter is admitted as a new one, and the other poll still
			// refuses a second vote.
			if _, err := s.Vote(ctx, ingest.Request{PollID: gone.ID, Options: []string{"a"}, Voter: "d1"}); err != nil {
				t.Fatalf("a forgotten voter's vote: %v", err)
			}
			if _, err := s.Vote(ctx, ingest.Request{PollID: kept.ID, Options: []string{"a"}, Voter: "d1"}); !errors.Is(err, poll.ErrAlreadyVoted) {
				t.Fatalf("a second vote in the other poll: %v", err)
			}
		})
	}
}

// logVotes counts the messages of a poll in the log.
func logVotes(t *testing.T, e *env, pollID string) int {
	t.Helper()
	n := 0
	if err := votelog.EachOfPoll(context.Background(), e.js, 4, pollID, func([]byte) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}
