package tally

import (
	"bytes"
	"log/slog"
	"testing"
	"time"

	"github.com/pollcast/pollcast/votelog"
)

func TestBatcherFolds(t *testing.T) {
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	rec := func(pollID string, voter string, sec int, opts ...string) []byte {
		r := votelog.Record{VoteID: "v", PollID: pollID, Options: opts, Voter: []byte(voter), Time: at.Add(time.Duration(sec) * time.Second)}
		return r.Append(nil)
	}
	var logged bytes.Buffer
	b := newBatcher(2, slog.New(slog.NewTextHandler(&logged, nil)), func(id string) bool { return id == "gone" })
	b.reset(10)

	b.add(9, rec("p", "k1", 0, "a"))  // at or below the watermark: a redelivery
	b.add(10, rec("p", "k1", 0, "a")) // likewise
	b.add(11, rec("p", "k1", 1, "a", "b"))
	b.add(11, rec("p", "k1", 1, "a", "b")) // the same message again
	b.add(12, rec("p", "", 3, "b"))
	b.add(13, rec("p", "k2", 2, "a"))
	b.add(14, rec("gone", "k3", 0, "a")) // deleted poll: skipped, watermark moves
	b.add(15, []byte("garbage"))         // bad record: logged, skipped, watermark moves

	if b.batch.Prev != 10 || b.batch.Last != 15 || b.n != 8 || b.counted != 3 {
		t.Fatalf("batch prev %d last %d, n %d counted %d", b.batch.Prev, b.batch.Last, b.n, b.counted)
	}
	if len(b.batch.Polls) != 1 {
		t.Fatalf("polls %v, want only p", b.batch.Polls)
	}
	d := b.batch.Polls["p"]
	if d.Total != 3 || d.Options["a"] != 2 || d.Options["b"] != 2 || d.Anonymous != 1 || len(d.Voters) != 2 || !d.At.Equal(at.Add(3*time.Second)) {
		t.Fatalf("delta %+v", d)
	}
	if d.Voters[0] != voterKey([]byte("k1")) || d.Voters[1] != voterKey([]byte("k2")) {
		t.Fatalf("voters %x", d.Voters)
	}
	if !bytes.Contains(logged.Bytes(), []byte("bad record")) {
		t.Fatalf("bad record not logged: %s", logged.String())
	}

	// Reset empties the batch for the next watermark and reuses the deltas.
	b.reset(15)
	if !b.empty() || len(b.batch.Polls) != 0 || b.batch.Prev != 15 || len(b.spare) != 1 {
		t.Fatalf("after reset: %+v, spare %d", b.batch, len(b.spare))
	}
	b.add(16, rec("q", "k1", 0, "c"))
	if d := b.batch.Polls["q"]; d.Total != 1 || len(d.Options) != 1 || d.Options["c"] != 1 || len(d.Voters) != 1 || d.Anonymous != 0 {
		t.Fatalf("reused delta not clean: %+v", d)
	}
}

// TestBatcherFoldsPacks: every vote of a pack counts, once, at the pack's
// sequence; a bad vote in it is skipped and the others still count.
func TestBatcherFoldsPacks(t *testing.T) {
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	recs := []votelog.Record{
		{VoteID: "v1", PollID: "p", Options: []string{"a"}, Voter: []byte("k1"), Time: at},
		{VoteID: "v2", PollID: "p", Options: []string{"b"}, Time: at.Add(time.Second)},
		{VoteID: "v3", PollID: "p", Options: []string{"a", "b"}, Voter: []byte("k2"), Time: at},
	}
	pack := votelog.AppendMessage(nil, recs)
	var logged bytes.Buffer
	b := newBatcher(0, slog.New(slog.NewTextHandler(&logged, nil)), func(string) bool { return false })
	b.reset(4)
	var kept []string
	b.addMessage(5, pack, &b.rec, func(r *votelog.Record) { kept = append(kept, r.VoteID) })
	b.add(5, pack) // redelivered
	// A pack whose second vote is damaged: the first still counts.
	bad := append([]byte{2, 2}, byte(len(recs[0].Append(nil))))
	bad = append(recs[0].Append(bad), 3, 'b', 'a', 'd')
	b.add(6, bad)
	d := b.batch.Polls["p"]
	if b.batch.Last != 6 || b.counted != 4 || d.Total != 4 || d.Options["a"] != 3 || d.Options["b"] != 2 || d.Anonymous != 1 || len(d.Voters) != 3 {
		t.Fatalf("last %d counted %d delta %+v", b.batch.Last, b.counted, d)
	}
	if len(kept) != 3 || kept[0] != "v1" || kept[2] != "v3" {
		t.Fatalf("kept %v", kept)
	}
	if !bytes.Contains(logged.Bytes(), []byte("bad record")) {
		t.Fatalf("bad vote not logged: %s", logged.String())
	}
}

// TestBatcherAllocations: once the batcher has seen a poll, folding a vote
// allocates only the record's vote ID; the batch's maps, deltas and record
// are reused.
func TestBatcherAllocations(t *testing.T) {
	r := votelog.Record{VoteID: "v1", PollID: "p", Options: []string{"a"}, Voter: bytes.Repeat([]byte{7}, 16), Time: time.Now(), Country: "FR"}
	data := r.Append(nil)
	b := newBatcher(0, slog.Default(), func(string) bool { return false })
	seq := uint64(0)
	b.reset(0)
	for range 1000 { // warm up: grow the voters slice
		seq++
		b.add(seq, data)
	}
	fold := testing.AllocsPerRun(1000, func() {
		b.reset(seq)
		for range 1000 {
			seq++
			b.add(seq, data)
		}
	}) / 1000
	if fold > 1.01 {
		t.Fatalf("%.2f allocations per vote folded, want 1 (the vote ID)", fold)
	}
}

// TestBatcherAsksDeletedOnceABatch: the catalog is asked about a poll once
// a batch, not once a vote.
func TestBatcherAsksDeletedOnceABatch(t *testing.T) {
	asked := map[string]int{}
	b := newBatcher(0, slog.Default(), func(id string) bool { asked[id]++; return id == "gone" })
	b.reset(0)
	seq := uint64(0)
	for range 3 {
		for _, id := range []string{"p", "gone"} {
			seq++
			b.add(seq, (&votelog.Record{VoteID: "v", PollID: id, Options: []string{"a"}, Time: time.Now()}).Append(nil))
		}
	}
	if asked["p"] != 1 || asked["gone"] != 1 || b.counted != 3 || b.batch.Last != 6 || len(b.batch.Polls) != 1 {
		t.Fatalf("asked %v, counted %d, last %d, polls %d", asked, b.counted, b.batch.Last, len(b.batch.Polls))
	}
	b.reset(seq)
	seq++
	b.add(seq, (&votelog.Record{VoteID: "v", PollID: "gone", Options: []string{"a"}, Time: time.Now()}).Append(nil))
	if asked["gone"] != 2 || b.counted != 0 {
		t.Fatalf("next batch: asked %v, counted %d", asked, b.counted)
	}
}

func TestVoterKey(t *testing.T) {
	k16 := bytes.Repeat([]byte{1}, 16)
	if k := voterKey(k16); !bytes.Equal(k[:], k16) {
		t.Fatalf("a 16-byte key changed: %x", k)
	}
	long1, long2 := append(bytes.Repeat([]byte{1}, 16), 1), append(bytes.Repeat([]byte{1}, 16), 2)
	if voterKey(long1) == voterKey(long2) {
		t.Fatal("long keys differing after 16 bytes were merged")
	}
	if voterKey([]byte("ab")) == voterKey([]byte("ac")) {
		t.Fatal("short keys merged")
	}
}
