package analytics

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the pure-Go SQLite driver
)

// SQLiteStore keeps analytics in a SQLite file: the default of the
// single-process mode, no outside service. Choose ClickHouseStore when
// votes come from several nodes or regions, or run to hundreds of millions.
type SQLiteStore struct {
	db *sql.DB
}

var _ Store = (*SQLiteStore)(nil)

// OpenSQLite opens (or creates) the SQLite file at path and applies the
// embedded migrations.
func OpenSQLite(ctx context.Context, path string) (*SQLiteStore, error) {
	s, err := openSQLite(path)
	if err != nil {
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		s.db.Close()
		return nil, err
	}
	return s, nil
}

// openSQLite opens the SQLite file at path without migrating it.
func openSQLite(path string) (*SQLiteStore, error) {
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "busy_timeout(10000)", "synchronous(NORMAL)", "foreign_keys(on)"} {
		q.Add("_pragma", p)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("analytics: open sqlite: %w", err)
	}
	return &SQLiteStore{db: db}, nil
}

func (s *SQLiteStore) migrate(ctx context.Context) error {
	return s.migrateTo(ctx, math.MaxInt)
}

// migrateTo applies the migrations not applied yet up to version last, each
// in one transaction.
func (s *SQLiteStore) migrateTo(ctx context.Context, last int) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)`); err != nil {
		return fmt.Errorf("analytics: migrate: %w", err)
	}
	ms, err := migrationsOf("sqlite")
	if err != nil {
		return fmt.Errorf("analytics: migrations: %w", err)
	}
	for _, m := range ms {
		if m.version > last {
			break
		}
		var n int
		if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, m.version).Scan(&n); err != nil {
			return fmt.Errorf("analytics: migrate: %w", err)
		}
		if n > 0 {
			continue
		}
		if err := s.apply(ctx, m); err != nil {
			return err
		}
	}
	return nil
}

// apply applies migration m and records it, in one transaction.
func (s *SQLiteStore) apply(ctx context.Context, m migration) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("analytics: migrate: %w", err)
	}
	defer tx.Rollback()
	for _, st := range m.statements() {
		if st.when != "" {
			var n int64
			if err := tx.QueryRowContext(ctx, st.when).Scan(&n); err != nil {
				return fmt.Errorf("analytics: migration %d: %w", m.version, err)
			}
			if n == 0 {
				continue
			}
		}
		if _, err := tx.ExecContext(ctx, st.sql); err != nil {
			return fmt.Errorf("analytics: migration %d: %w", m.version, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version) VALUES (?)`, m.version); err != nil {
		return fmt.Errorf("analytics: migrate: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("analytics: migrate: %w", err)
	}
	return nil
}

// LastSeq implements Store.
func (s *SQLiteStore) LastSeq(ctx context.Context) (uint64, error) {
	var seq sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT max(seq) FROM votes`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("analytics: last seq: %w", err)
	}
	return uint64(seq.Int64), nil
}

// Insert implements Store: one transaction; a stored (Seq, Idx) is ignored.
func (s *SQLiteStore) Insert(ctx context.Context, votes []Vote) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("analytics: insert: %w", err)
	}
	defer tx.Rollback()
	// Rows go in sqliteInsertRows at a time, one statement each: a row per
	// statement spent more in database/sql than in SQLite.
	var full *sql.Stmt
	args := make([]any, 0, sqliteInsertRows*sqliteInsertCols)
	for len(votes) > 0 {
		n := min(len(votes), sqliteInsertRows)
		args = args[:0]
		for i := range votes[:n] {
			v := &votes[i]
			opts, _ := json.Marshal(v.Options)
			args = append(args, int64(v.Seq), int64(v.Idx), v.VoteID, v.PollID, string(opts), v.Time.Unix(), v.Region, v.Country, v.Device, v.Referrer)
		}
		stmt := full
		if n < sqliteInsertRows || full == nil {
			if stmt, err = tx.PrepareContext(ctx, sqliteInsert(n)); err != nil {
				return fmt.Errorf("analytics: insert: %w", err)
			}
			defer stmt.Close()
			if n == sqliteInsertRows {
				full = stmt
			}
		}
		if _, err := stmt.ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("analytics: insert: %w", err)
		}
		votes = votes[n:]
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("analytics: insert: %w", err)
	}
	return nil
}

const (
	// sqliteInsertRows is the most rows one INSERT statement carries
	// (sqliteInsertCols parameters each, far under SQLite's limit of
	// 32,766).
	sqliteInsertRows = 100
	sqliteInsertCols = 10
)

// sqliteInsert is the INSERT statement of n rows.
func sqliteInsert(n int) string {
	var b strings.Builder
	b.WriteString(`INSERT OR IGNORE INTO votes (seq, idx, vote_id, poll_id, options, time, region, country, device, referrer) VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?,?,?,?,?,?,?,?,?,?)")
	}
	return b.String()
}

// Timeline implements Store.
func (s *SQLiteStore) Timeline(ctx context.Context, pollID string, from, to time.Time, step time.Duration) ([]Point, error) {
	sec := int64(step / time.Second)
	args := []any{sec, sec, pollID, from.Unix(), to.Unix()}
	const where = ` WHERE poll_id = ? AND time >= ? AND time < ? `
	var b timelineBuilder
	err := s.query(ctx, `SELECT (time / ?) * ? AS t, count(*) FROM votes`+where+`GROUP BY t ORDER BY t`, args, func(r *sql.Rows) error {
		var t, n int64
		if err := r.Scan(&t, &n); err != nil {
			return err
		}
		b.votes(t, n)
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = s.query(ctx, `SELECT (time / ?) * ? AS t, j.value, count(*) FROM votes, json_each(votes.options) AS j`+where+`GROUP BY t, j.value`, args, func(r *sql.Rows) error {
		var t, n int64
		var o string
		if err := r.Scan(&t, &o, &n); err != nil {
			return err
		}
		b.option(t, o, n)
		return nil
	})
	return b.points, err
}

// Breakdown implements Store.
func (s *SQLiteStore) Breakdown(ctx context.Context, pollID string, by Dimension) ([]Row, error) {
	if _, err := ParseDimension(string(by)); err != nil {
		return nil, err
	}
	col := string(by) // one of four column names
	var b breakdownBuilder
	err := s.query(ctx, `SELECT `+col+`, count(*) FROM votes WHERE poll_id = ? GROUP BY `+col, []any{pollID}, func(r *sql.Rows) error {
		var k string
		var n int64
		if err := r.Scan(&k, &n); err != nil {
			return err
		}
		b.votes(k, n)
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = s.query(ctx, `SELECT `+col+`, j.value, count(*) FROM votes, json_each(votes.options) AS j
		WHERE poll_id = ? GROUP BY `+col+`, j.value`, []any{pollID}, func(r *sql.Rows) error {
		var k, o string
		var n int64
		if err := r.Scan(&k, &o, &n); err != nil {
			return err
		}
		b.option(k, o, n)
		return nil
	})
	return b.result(), err
}

// Export implements Store.
func (s *SQLiteStore) Export(ctx context.Context, pollID string, fn func(*Vote) error) error {
	var v Vote
	var opts string
	var t, seq, idx int64
	return s.query(ctx, `SELECT seq, idx, vote_id, poll_id, options, time, region, country, device, referrer
		FROM votes WHERE poll_id = ? ORDER BY seq, idx`, []any{pollID}, func(r *sql.Rows) error {
		if err := r.Scan(&seq, &idx, &v.VoteID, &v.PollID, &opts, &t, &v.Region, &v.Country, &v.Device, &v.Referrer); err != nil {
			return err
		}
		v.Seq, v.Idx, v.Time, v.Options = uint64(seq), uint32(idx), time.Unix(t, 0).UTC(), v.Options[:0]
		if err := json.Unmarshal([]byte(opts), &v.Options); err != nil {
			return err
		}
		return fn(&v)
	})
}

// query runs a query and calls each for every row.
func (s *SQLiteStore) query(ctx context.Context, q string, args []any, each func(*sql.Rows) error) error {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("analytics: query: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := each(rows); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("analytics: query: %w", err)
	}
	return nil
}

// Ping implements Store.
func (s *SQLiteStore) Ping(ctx context.Context) error {
	return s.db.PingContext(ctx)
}

// Close implements Store.
func (s *SQLiteStore) Close() error {
	return s.db.Close()
}
