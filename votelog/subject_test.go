package votelog

import "testing"

func TestParseVoteSubject(t *testing.T) {
	for _, shard := range []int{0, 7, 15, 123} {
		subject := VoteSubject(shard, "poll.id")
		if got, pollID, ok := ParseVoteSubject(subject); !ok || got != shard || pollID != "poll.id" {
			t.Errorf("ParseVoteSubject(%q) = %d, %q, %v", subject, got, pollID, ok)
		}
	}
	for _, bad := range []string{"", "votes", "votes.", "votes.x.p", "votes..p", "votes.-1.p", "results.1.p", "votes.3"} {
		if n, pollID, ok := ParseVoteSubject(bad); ok {
			t.Errorf("ParseVoteSubject(%q) = %d, %q, true", bad, n, pollID)
		}
	}
	if a := testing.AllocsPerRun(100, func() { ParseVoteSubject("votes.12.abc") }); a != 0 {
		t.Fatalf("ParseVoteSubject allocates %v times", a)
	}
}
