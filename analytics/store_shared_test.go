package analytics

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/pollcast/pollcast/internal/testsvc"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testsvc.StopAll()
	os.Exit(code)
}

func newSQLite(t testing.TB) Store {
	s, err := OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "analytics.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newClickHouse(t testing.TB) Store {
	s, err := OpenClickHouse(context.Background(), testsvc.ClickHouse(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSQLiteStore(t *testing.T) {
	testStore(t, func(t *testing.T) Store { return newSQLite(t) })
}

func TestClickHouseStore(t *testing.T) {
	testStore(t, func(t *testing.T) Store { return newClickHouse(t) })
}

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// fixture is a small hand-counted set of votes for poll "p" (and one for "q").
func fixture() []Vote {
	return []Vote{
		{Seq: 1, VoteID: "v1", PollID: "p", Options: []string{"a"}, Time: t0, Region: "eu", Country: "DE", Device: "mobile", Referrer: "news.example.com"},
		{Seq: 2, VoteID: "v2", PollID: "p", Options: []string{"b"}, Time: t0.Add(30 * time.Second), Region: "eu", Country: "DE", Device: "desktop", Referrer: "news.example.com"},
		{Seq: 3, VoteID: "v3", PollID: "q", Options: []string{"a"}, Time: t0.Add(40 * time.Second), Region: "us", Country: "US", Device: "mobile"},
		{Seq: 4, VoteID: "v4", PollID: "p", Options: []string{"a", "b"}, Time: t0.Add(61 * time.Second), Region: "us", Country: "US", Device: "mobile", Referrer: "blog.example.org"},
		{Seq: 5, VoteID: "v5", PollID: "p", Options: []string{"a"}, Time: t0.Add(5 * time.Minute), Region: "us", Country: "", Device: "bot"},
	}
}

// packFixture is votes of poll "pk" from log messages 6 (one vote), 7 (a
// pack of three) and 8 (one vote).
func packFixture() []Vote {
	return []Vote{
		{Seq: 6, VoteID: "w0", PollID: "pk", Options: []string{"b"}, Time: t0, Region: "eu", Country: "FR", Device: "desktop"},
		{Seq: 7, Idx: 0, VoteID: "w1", PollID: "pk", Options: []string{"a"}, Time: t0, Region: "eu", Country: "FR", Device: "mobile"},
		{Seq: 7, Idx: 1, VoteID: "w2", PollID: "pk", Options: []string{"a", "b"}, Time: t0, Region: "eu", Country: "FR", Device: "mobile"},
		{Seq: 7, Idx: 2, VoteID: "w3", PollID: "pk", Options: []string{"a"}, Time: t0.Add(time.Minute), Region: "us", Country: "US", Device: "mobile"},
		{Seq: 8, VoteID: "w4", PollID: "pk", Options: []string{"b"}, Time: t0.Add(time.Minute), Region: "us", Country: "", Device: "bot"},
	}
}

// checkPack checks that a store holds each vote of packFixture once:
// export, timeline and breakdown.
func checkPack(t *testing.T, s Store) {
	t.Helper()
	ctx := context.Background()
	const pollID = "pk"
	pack := packFixture()
	if got := exportAll(t, s, pollID); !reflect.DeepEqual(got, pack) {
		t.Fatalf("export:\n got %+v\nwant %+v", got, pack)
	}
	points, err := s.Timeline(ctx, pollID, t0, t0.Add(time.Hour), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	wantPoints := []Point{
		{T: t0, Votes: 3, ByOption: map[string]int64{"a": 2, "b": 2}},
		{T: t0.Add(time.Minute), Votes: 2, ByOption: map[string]int64{"a": 1, "b": 1}},
	}
	if !reflect.DeepEqual(points, wantPoints) {
		t.Fatalf("timeline:\n got %+v\nwant %+v", points, wantPoints)
	}
	rows, err := s.Breakdown(ctx, pollID, ByCountry)
	if err != nil {
		t.Fatal(err)
	}
	wantRows := []Row{
		{Key: "FR", Votes: 3, ByOption: map[string]int64{"a": 2, "b": 2}},
		{Key: "US", Votes: 1, ByOption: map[string]int64{"a": 1}},
		{Key: "unknown", Votes: 1, ByOption: map[string]int64{"b": 1}},
	}
	if !reflect.DeepEqual(rows, wantRows) {
		t.Fatalf("by country:\n got %+v\nwant %+v", rows, wantRows)
	}
}

// exportAll returns the export of a poll.
func exportAll(t *testing.T, s Store, pollID string) []Vote {
	t.Helper()
	var got []Vote
	if err := s.Export(context.Background(), pollID, func(v *Vote) error {
		c := *v
		c.Options = append([]string(nil), v.Options...)
		got = append(got, c)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

// testStore is the conformance suite every analytics Store passes.
func testStore(t *testing.T, newStore func(t *testing.T) Store) {
	ctx := context.Background()
	t.Run("insert, replay and last seq", func(t *testing.T) {
		s := newStore(t)
		if seq, err := s.LastSeq(ctx); err != nil || seq != 0 {
			t.Fatalf("empty LastSeq = %d, %v", seq, err)
		}
		votes := fixture()
		if err := s.Insert(ctx, votes[:3]); err != nil {
			t.Fatal(err)
		}
		// A replay overlapping what is stored counts nothing twice.
		if err := s.Insert(ctx, votes); err != nil {
			t.Fatal(err)
		}
		if err := s.Insert(ctx, votes[3:]); err != nil {
			t.Fatal(err)
		}
		if seq, _ := s.LastSeq(ctx); seq != 5 {
			t.Fatalf("LastSeq = %d, want 5", seq)
		}
		got := exportAll(t, s, "p")
		want := []Vote{votes[0], votes[1], votes[3], votes[4]}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("export:\n got %+v\nwant %+v", got, want)
		}
	})

	t.Run("delete after a sequence", func(t *testing.T) {
		s := newStore(t)
		ctx := context.Background()
		if err := s.Insert(ctx, append(fixture(), packFixture()...)); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteAfter(ctx, 100); err != nil { // past the end: nothing
			t.Fatal(err)
		}
		if last, err := s.LastSeq(ctx); err != nil || last != 8 {
			t.Fatalf("LastSeq after deleting nothing = %d, %v; want 8", last, err)
		}
		if err := s.DeleteAfter(ctx, 4); err != nil {
			t.Fatal(err)
		}
		if last, err := s.LastSeq(ctx); err != nil || last != 4 {
			t.Fatalf("LastSeq after DeleteAfter(4) = %d, %v; want 4", last, err)
		}
		var seqs []uint64
		for _, v := range exportAll(t, s, "p") {
			seqs = append(seqs, v.Seq)
		}
		if fmt.Sprint(seqs) != "[1 2 4]" || len(exportAll(t, s, "pk")) != 0 || len(exportAll(t, s, "q")) != 1 {
			t.Fatalf("rows of p after DeleteAfter(4): %v; of pk %d, want none; of q %d, want 1", seqs, len(exportAll(t, s, "pk")), len(exportAll(t, s, "q")))
		}
		// The rows come back when the log has them again, once.
		if err := s.Insert(ctx, packFixture()); err != nil {
			t.Fatal(err)
		}
		checkPack(t, s)
		if err := s.DeleteAfter(ctx, 0); err != nil {
			t.Fatal(err)
		}
		if last, err := s.LastSeq(ctx); err != nil || last != 0 {
			t.Fatalf("LastSeq after DeleteAfter(0) = %d, %v; want 0", last, err)
		}
	})

	t.Run("timeline", func(t *testing.T) {
		s := newStore(t)
		if err := s.Insert(ctx, fixture()); err != nil {
			t.Fatal(err)
		}
		got, err := s.Timeline(ctx, "p", t0, t0.Add(time.Hour), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		want := []Point{
			{T: t0, Votes: 2, ByOption: map[string]int64{"a": 1, "b": 1}},
			{T: t0.Add(time.Minute), Votes: 1, ByOption: map[string]int64{"a": 1, "b": 1}},
			{T: t0.Add(5 * time.Minute), Votes: 1, ByOption: map[string]int64{"a": 1}},
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("timeline 1m:\n got %+v\nwant %+v", got, want)
		}
		got, _ = s.Timeline(ctx, "p", t0, t0.Add(time.Hour), time.Hour)
		if len(got) != 1 || got[0].Votes != 4 || got[0].ByOption["a"] != 3 || got[0].ByOption["b"] != 2 {
			t.Fatalf("timeline 1h: %+v", got)
		}
		// from is inclusive, to exclusive.
		got, _ = s.Timeline(ctx, "p", t0.Add(time.Minute), t0.Add(5*time.Minute), time.Minute)
		if len(got) != 1 || got[0].Votes != 1 {
			t.Fatalf("window: %+v", got)
		}
		if filled := FillTimeline(got, t0.Add(time.Minute), t0.Add(5*time.Minute), time.Minute); len(filled) != 4 || filled[1].Votes != 0 || filled[0].Votes != 1 {
			t.Fatalf("filled: %+v", filled)
		}
	})

	t.Run("breakdown", func(t *testing.T) {
		s := newStore(t)
		if err := s.Insert(ctx, fixture()); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			by   Dimension
			want []Row
		}{
			{ByCountry, []Row{
				{Key: "DE", Votes: 2, ByOption: map[string]int64{"a": 1, "b": 1}},
				{Key: "US", Votes: 1, ByOption: map[string]int64{"a": 1, "b": 1}},
				{Key: "unknown", Votes: 1, ByOption: map[string]int64{"a": 1}},
			}},
			{ByRegion, []Row{
				{Key: "eu", Votes: 2, ByOption: map[string]int64{"a": 1, "b": 1}},
				{Key: "us", Votes: 2, ByOption: map[string]int64{"a": 2, "b": 1}},
			}},
			{ByDevice, []Row{
				{Key: "mobile", Votes: 2, ByOption: map[string]int64{"a": 2, "b": 1}},
				{Key: "bot", Votes: 1, ByOption: map[string]int64{"a": 1}},
				{Key: "desktop", Votes: 1, ByOption: map[string]int64{"b": 1}},
			}},
			{ByReferrer, []Row{
				{Key: "news.example.com", Votes: 2, ByOption: map[string]int64{"a": 1, "b": 1}},
				{Key: "blog.example.org", Votes: 1, ByOption: map[string]int64{"a": 1, "b": 1}},
				{Key: "unknown", Votes: 1, ByOption: map[string]int64{"a": 1}},
			}},
		}
		for _, tt := range tests {
			got, err := s.Breakdown(ctx, "p", tt.by)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("by %s:\n got %+v\nwant %+v", tt.by, got, tt.want)
			}
		}
		if _, err := s.Breakdown(ctx, "p", "ip; DROP TABLE votes"); err == nil {
			t.Fatal("bad dimension accepted")
		}
	})

	t.Run("votes sharing a log message", func(t *testing.T) {
		s := newStore(t)
		if err := s.Insert(ctx, fixture()); err != nil {
			t.Fatal(err)
		}
		pack := packFixture()
		// Out of order, then replayed whole and in part: each (Seq, Idx)
		// counts once, and votes sharing a Seq are all kept.
		if err := s.Insert(ctx, []Vote{pack[2], pack[0]}); err != nil {
			t.Fatal(err)
		}
		if err := s.Insert(ctx, pack); err != nil {
			t.Fatal(err)
		}
		if err := s.Insert(ctx, []Vote{pack[1], fixture()[4], pack[3]}); err != nil {
			t.Fatal(err)
		}
		if seq, err := s.LastSeq(ctx); err != nil || seq != 8 {
			t.Fatalf("LastSeq = %d, %v; want 8", seq, err)
		}
		checkPack(t, s)
	})

	t.Run("delete poll", func(t *testing.T) {
		s := newStore(t)
		if err := s.Insert(ctx, append(fixture(), packFixture()...)); err != nil {
			t.Fatal(err)
		}
		for range 2 { // idempotent
			if err := s.DeletePoll(ctx, "p"); err != nil {
				t.Fatal(err)
			}
			if got := exportAll(t, s, "p"); len(got) != 0 {
				t.Fatalf("export of a deleted poll: %+v", got)
			}
			if points, err := s.Timeline(ctx, "p", t0, t0.Add(time.Hour), time.Minute); err != nil || len(points) != 0 {
				t.Fatalf("timeline of a deleted poll: %+v, %v", points, err)
			}
			if rows, err := s.Breakdown(ctx, "p", ByCountry); err != nil || len(rows) != 0 {
				t.Fatalf("breakdown of a deleted poll: %+v, %v", rows, err)
			}
			// The other polls' rows are all there.
			if got := exportAll(t, s, "q"); !reflect.DeepEqual(got, []Vote{fixture()[2]}) {
				t.Fatalf("export of another poll: %+v", got)
			}
			checkPack(t, s)
			if seq, err := s.LastSeq(ctx); err != nil || seq != 8 {
				t.Fatalf("LastSeq = %d, %v; want 8", seq, err)
			}
		}
		if err := s.DeletePoll(ctx, "never-stored"); err != nil {
			t.Fatalf("DeletePoll of an unknown poll: %v", err)
		}
		// Rows of the poll inserted after the delete are stored as any.
		late := fixture()[4]
		late.Seq = 9
		if err := s.Insert(ctx, []Vote{late}); err != nil {
			t.Fatal(err)
		}
		if got := exportAll(t, s, "p"); !reflect.DeepEqual(got, []Vote{late}) {
			t.Fatalf("export after a later insert: %+v", got)
		}
	})

	t.Run("export of 100,000 votes streams", func(t *testing.T) {
		s := newStore(t)
		const n = 100_000
		batch := make([]Vote, 0, 20_000)
		for i := 1; i <= n; i++ {
			batch = append(batch, Vote{Seq: uint64(i), VoteID: fmt.Sprintf("v%d", i), PollID: "big", Options: []string{"a"},
				Time: t0.Add(time.Duration(i) * time.Second), Region: "local", Device: "desktop"})
			if len(batch) == cap(batch) {
				if err := s.Insert(ctx, batch); err != nil {
					t.Fatal(err)
				}
				batch = batch[:0]
			}
		}
		count, last := 0, uint64(0)
		if err := s.Export(ctx, "big", func(v *Vote) error {
			count++
			if v.Seq <= last {
				return fmt.Errorf("out of order: %d after %d", v.Seq, last)
			}
			last = v.Seq
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if count != n {
			t.Fatalf("exported %d votes, want %d", count, n)
		}
	})
}
