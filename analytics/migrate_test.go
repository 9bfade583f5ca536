package analytics

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/pollcast/pollcast/internal/testsvc"
)

func TestStatements(t *testing.T) {
	m := migration{version: 9, sql: `-- a comment; with a semicolon
CREATE TABLE a (x Int8); -- after; the statement
-- when: SELECT 1
INSERT INTO a (x)
    SELECT 1; DROP TABLE b;
`}
	got := m.statements()
	want := []statement{
		{sql: "CREATE TABLE a (x Int8)"},
		{sql: "INSERT INTO a (x)\n    SELECT 1", when: "SELECT 1"},
		{sql: "DROP TABLE b"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("statements:\n got %q\nwant %q", got, want)
	}
}

// checkMigrated checks a store migrated from version 1 holding fixture():
// the rows are there with Idx 0, and votes sharing a Seq are kept while a
// replay is not counted twice.
func checkMigrated(t *testing.T, s Store) {
	t.Helper()
	ctx := context.Background()
	want := []Vote{}
	for _, v := range fixture() {
		if v.PollID == "p" {
			want = append(want, v)
		}
	}
	if got := exportAll(t, s, "p"); !reflect.DeepEqual(got, want) {
		t.Fatalf("export after migrating:\n got %+v\nwant %+v", got, want)
	}
	if seq, err := s.LastSeq(ctx); err != nil || seq != 5 {
		t.Fatalf("LastSeq = %d, %v; want 5", seq, err)
	}
	pack := packFixture()
	if err := s.Insert(ctx, append(pack, fixture()...)); err != nil {
		t.Fatal(err)
	}
	if err := s.Insert(ctx, pack[1:4]); err != nil {
		t.Fatal(err)
	}
	checkPack(t, s)
	if got := exportAll(t, s, "p"); !reflect.DeepEqual(got, want) {
		t.Fatalf("export after a replay:\n got %+v\nwant %+v", got, want)
	}
	rows, err := s.Breakdown(ctx, "p", ByRegion)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Votes+rows[1].Votes != 4 {
		t.Fatalf("by region after a replay: %+v", rows)
	}
}

func TestSQLiteMigration0002(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "analytics.db")
	old, err := openSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := old.migrateTo(ctx, 1); err != nil {
		t.Fatal(err)
	}
	for _, v := range fixture() {
		opts, _ := json.Marshal(v.Options)
		if _, err := old.db.ExecContext(ctx, `INSERT INTO votes (seq, vote_id, poll_id, options, time, region, country, device, referrer)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, v.Seq, v.VoteID, v.PollID, string(opts), v.Time.Unix(), v.Region, v.Country, v.Device, v.Referrer); err != nil {
			t.Fatal(err)
		}
	}
	old.Close()

	s, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkMigrated(t, s)
	var indexes []string
	if err := s.query(ctx, `SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'votes' ORDER BY name`, nil, func(r *sql.Rows) error {
		var n string
		if err := r.Scan(&n); err != nil {
			return err
		}
		indexes = append(indexes, n)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(indexes, []string{"votes_poll_time"}) {
		t.Fatalf("indexes of votes: %q", indexes)
	}
}

func TestClickHouseMigration0002(t *testing.T) {
	ms, err := migrationsOf("clickhouse")
	if err != nil {
		t.Fatal(err)
	}
	stmts := ms[1].statements()
	if ms[1].version != 2 {
		t.Fatalf("second migration is %d", ms[1].version)
	}
	// A migration cut short after each of its statements, or in the midst
	// of its RENAME of two tables (not atomic), is run again by the next
	// start and ends as one run in full does. A copy run twice leaves each
	// old row twice in the table: queries count it once.
	type cut struct {
		name  string
		ran   int    // statements of 0002 run before the cut
		extra string // then this statement
	}
	cuts := []cut{{name: "not started"}}
	for i := range stmts {
		cuts = append(cuts, cut{name: fmt.Sprintf("after %d %s", i+1, strings.Fields(stmts[i].sql)[0]), ran: i + 1})
	}
	cuts = append(cuts, cut{name: "in the midst of RENAME", ran: 2, extra: "RENAME TABLE votes TO votes_0001"})
	for _, c := range cuts {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			dsn := testsvc.ClickHouse(t)
			old, err := openClickHouse(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer old.Close()
			if err := old.migrateTo(ctx, 1); err != nil {
				t.Fatal(err)
			}
			b, err := old.conn.PrepareBatch(ctx, `INSERT INTO votes (seq, vote_id, poll_id, options, time, region, country, device, referrer)`)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range fixture() {
				if err := b.Append(v.Seq, v.VoteID, v.PollID, v.Options, v.Time, v.Region, v.Country, v.Device, v.Referrer); err != nil {
					t.Fatal(err)
				}
			}
			if err := b.Send(); err != nil {
				t.Fatal(err)
			}
			if err := old.run(ctx, 2, stmts[:c.ran]); err != nil {
				t.Fatal(err)
			}
			if c.extra != "" {
				if err := old.conn.Exec(ctx, c.extra); err != nil {
					t.Fatal(err)
				}
			}

			s, err := OpenClickHouse(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var tables []string
			if err := s.query(ctx, `SELECT name FROM system.tables WHERE database = currentDatabase() ORDER BY name`, nil, func(r driver.Rows) error {
				var n string
				if err := r.Scan(&n); err != nil {
					return err
				}
				tables = append(tables, n)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(tables, []string{"schema_migrations", "votes"}) {
				t.Fatalf("tables after migrating: %q", tables)
			}
			var versions uint64
			if err := s.conn.QueryRow(ctx, `SELECT count() FROM schema_migrations WHERE version = 2`).Scan(&versions); err != nil || versions != 1 {
				t.Fatalf("version 2 recorded %d times, %v", versions, err)
			}
			checkMigrated(t, s)
		})
	}
}

// TestSQLiteMigration0003: rows stored before polls and profiles keep every
// value and count once, and new votes of the same poll and profile share
// their ids.
func TestSQLiteMigration0003(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "analytics.db")
	old, err := openSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := old.migrateTo(ctx, 2); err != nil {
		t.Fatal(err)
	}
	for _, v := range append(fixture(), packFixture()...) {
		opts, _ := json.Marshal(v.Options)
		if _, err := old.db.ExecContext(ctx, `INSERT INTO votes (seq, idx, vote_id, poll_id, options, time, region, country, device, referrer)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, v.Seq, v.Idx, v.VoteID, v.PollID, string(opts), v.Time.Unix(), v.Region, v.Country, v.Device, v.Referrer); err != nil {
			t.Fatal(err)
		}
	}
	old.Close()

	s, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := []Vote{}
	for _, v := range fixture() {
		if v.PollID == "p" {
			want = append(want, v)
		}
	}
	if got := exportAll(t, s, "p"); !reflect.DeepEqual(got, want) {
		t.Fatalf("export after migrating:\n got %+v\nwant %+v", got, want)
	}
	checkPack(t, s)
	if seq, err := s.LastSeq(ctx); err != nil || seq != 8 {
		t.Fatalf("LastSeq = %d, %v; want 8", seq, err)
	}
	// A replay stores nothing twice; a new vote like an old one shares its
	// poll and profile.
	if err := s.Insert(ctx, append(packFixture(), Vote{Seq: 9, VoteID: "w5", PollID: "pk", Options: []string{"b"}, Time: t0,
		Region: "eu", Country: "FR", Device: "desktop"})); err != nil {
		t.Fatal(err)
	}
	var polls, profiles, votes int
	if err := s.db.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM polls), (SELECT count(*) FROM profiles), (SELECT count(*) FROM votes)`).Scan(&polls, &profiles, &votes); err != nil {
		t.Fatal(err)
	}
	if polls != 3 || profiles != 9 || votes != 11 {
		t.Fatalf("%d polls, %d profiles, %d votes; want 3, 9, 11", polls, profiles, votes)
	}
	rows, err := s.Breakdown(ctx, "pk", ByDevice)
	if err != nil {
		t.Fatal(err)
	}
	if want := []Row{
		{Key: "mobile", Votes: 3, ByOption: map[string]int64{"a": 3, "b": 1}},
		{Key: "desktop", Votes: 2, ByOption: map[string]int64{"b": 2}},
		{Key: "bot", Votes: 1, ByOption: map[string]int64{"b": 1}},
	}; !reflect.DeepEqual(rows, want) {
		t.Fatalf("by device:\n got %+v\nwant %+v", rows, want)
	}
}
