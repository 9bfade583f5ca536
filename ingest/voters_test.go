package ingest

import (
	"sync"
	"testing"
)

func TestVotersClaimLifecycle(t *testing.T) {
	v := NewVoters()
	k := voterKey{1}
	a, b := voteID{1}, voteID{2}

	if got := v.Claim(k, a); got != claimed {
		t.Fatalf("first claim = %v", got)
	}
	if got := v.Claim(k, b); got != claimTaken {
		t.Fatalf("other vote while in flight = %v", got)
	}
	if got := v.Claim(k, a); got != claimed {
		t.Fatalf("retry of the same vote in flight = %v", got)
	}
	v.Finish(k, false) // the retry failed...
	if v.Voted(k) {
		t.Fatal("voted before anything was stored")
	}
	v.Finish(k, true) // ...the first got stored
	if !v.Voted(k) {
		t.Fatal("not voted after the vote was stored")
	}
	if got := v.Claim(k, a); got != claimStored {
		t.Fatalf("retry after storing = %v", got)
	}
	if got := v.Claim(k, b); got != claimTaken {
		t.Fatalf("second vote after storing = %v", got)
	}
}

func TestVotersFailedPublishReleases(t *testing.T) {
	v := NewVoters()
	k := voterKey{7}
	v.Claim(k, voteID{1})
	v.Finish(k, false)
	if got := v.Claim(k, voteID{2}); got != claimed {
		t.Fatalf("claim after a failed publish = %v, want the voter free again", got)
	}
	if v.Len() != 1 {
		t.Fatalf("Len = %d", v.Len())
	}
}

func TestVotersRecordKeepsFirstStoredVote(t *testing.T) {
	v := NewVoters()
	k := voterKey{9}
	v.Record(k, voteID{1})
	v.Record(k, voteID{2})
	if got := v.Claim(k, voteID{1}); got != claimStored {
		t.Fatalf("claim of the first recorded vote = %v", got)
	}
}

func TestVotersConcurrentClaimsOneWins(t *testing.T) {
	v := NewVoters()
	k := voterKey{3}
	var wg sync.WaitGroup
	wins := make(chan voteID, 100)
	for i := range 100 {
		wg.Go(func() {
			id := voteID{byte(i), 1}
			if v.Claim(k, id) == claimed {
				wins <- id
			}
		})
	}
	wg.Wait()
	close(wins)
	if n := len(wins); n != 1 {
		t.Fatalf("%d claims won, want 1", n)
	}
}
