package analytics

import (
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // the pure-Go SQLite driver
)

// SQLiteStore keeps analytics in a SQLite file: the default of the
// single-process mode, no outside service. Choose ClickHouseStore when
// votes come from several nodes or regions, or run to hundreds of millions.
type SQLiteStore struct {
	db *sql.DB

	mu       sync.Mutex       // held by Insert
	polls    map[string]int64 // poll_id to polls.id, as stored
	profiles map[string]int64 // profileID's key to profiles.id, as stored
	key      []byte           // profileID's
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

// DeleteAfter implements Store, in one statement.
func (s *SQLiteStore) DeleteAfter(ctx context.Context, seq uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.db.ExecContext(ctx, `DELETE FROM votes WHERE seq > ?`, int64(seq)); err != nil {
		return fmt.Errorf("analytics: delete after %d: %w", seq, err)
	}
	return nil
}

// Insert implements Store: one transaction; a stored (Seq, Idx) is ignored.
//
// A row carries the ids of its poll (polls) and of its profile (profiles:
// options, region, country, device, referrer), which the store keeps in
// memory once it has looked them up or added them: an insert binds one
// text and five integers per vote. Insert calls run one at a time.
func (s *SQLiteStore) Insert(ctx context.Context, votes []Vote) (err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.polls)+len(s.profiles) > sqliteCacheMax {
		s.polls, s.profiles = nil, nil
	}
	if s.polls == nil {
		s.polls, s.profiles = map[string]int64{}, map[string]int64{}
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("analytics: insert: %w", err)
	}
	defer func() {
		if err != nil {
			// Ids added by a transaction rolled back may be given to
			// other values later: forget every id.
			s.polls, s.profiles = nil, nil
			tx.Rollback()
		}
	}()
	// Rows go in sqliteInsertRows at a time, one statement each: a row per
	// statement spent more in database/sql than in SQLite.
	var full *sql.Stmt
	args := make([]any, 0, sqliteInsertRows*sqliteInsertCols)
	for len(votes) > 0 {
		n := min(len(votes), sqliteInsertRows)
		args = args[:0]
		for i := range votes[:n] {
			v := &votes[i]
			poll, err := s.pollID(ctx, tx, v.PollID)
			if err != nil {
				return err
			}
			profile, err := s.profileID(ctx, tx, v)
			if err != nil {
				return err
			}
			args = append(args, int64(v.Seq), int64(v.Idx), v.VoteID, poll, v.Time.Unix(), profile)
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
	sqliteInsertCols = 6
	// sqliteCacheMax is the most poll and profile ids the store keeps in
	// memory; past it, Insert starts again from none.
	sqliteCacheMax = 100_000
)

// sqliteInsert is the INSERT statement of n rows.
func sqliteInsert(n int) string {
	var b strings.Builder
	b.WriteString(`INSERT OR IGNORE INTO votes (seq, idx, vote_id, poll, time, profile) VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?,?,?,?,?,?)")
	}
	return b.String()
}

// pollID returns the id of a poll in polls, adding it in tx when missing.
func (s *SQLiteStore) pollID(ctx context.Context, tx *sql.Tx, pollID string) (int64, error) {
	if id, ok := s.polls[pollID]; ok {
		return id, nil
	}
	id, err := lookupOrAdd(ctx, tx, `SELECT id FROM polls WHERE poll_id = ?`,
		`INSERT INTO polls (poll_id) VALUES (?) RETURNING id`, pollID)
	if err != nil {
		return 0, err
	}
	s.polls[pollID] = id
	return id, nil
}

// profileID returns the id of a vote's profile in profiles, adding it in tx
// when missing.
func (s *SQLiteStore) profileID(ctx context.Context, tx *sql.Tx, v *Vote) (int64, error) {
	// The cache's key holds every value of the profile, each after its
	// length, so that two profiles never share a key.
	k := s.key[:0]
	if v.Options == nil {
		k = append(k, 0) // stored as JSON null, as json.Marshal writes it
	} else {
		k = binary.AppendUvarint(k, uint64(len(v.Options))+1)
		for _, o := range v.Options {
			k = binary.AppendUvarint(k, uint64(len(o)))
			k = append(k, o...)
		}
	}
	for _, f := range [...]string{v.Region, v.Country, v.Device, v.Referrer} {
		k = binary.AppendUvarint(k, uint64(len(f)))
		k = append(k, f...)
	}
	s.key = k
	if id, ok := s.profiles[string(k)]; ok {
		return id, nil
	}
	opts, err := json.Marshal(v.Options)
	if err != nil {
		return 0, fmt.Errorf("analytics: insert: %w", err)
	}
	id, err := lookupOrAdd(ctx, tx,
		`SELECT id FROM profiles WHERE options = ? AND region = ? AND country = ? AND device = ? AND referrer = ?`,
		`INSERT INTO profiles (options, region, country, device, referrer) VALUES (?, ?, ?, ?, ?) RETURNING id`,
		string(opts), v.Region, v.Country, v.Device, v.Referrer)
	if err != nil {
		return 0, err
	}
	s.profiles[string(k)] = id
	return id, nil
}

// lookupOrAdd returns the id that lookup finds, or that add returns when
// lookup finds none, both given args.
func lookupOrAdd(ctx context.Context, tx *sql.Tx, lookup, add string, args ...any) (int64, error) {
	var id int64
	err := tx.QueryRowContext(ctx, lookup, args...).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		err = tx.QueryRowContext(ctx, add, args...).Scan(&id)
	}
	if err != nil {
		return 0, fmt.Errorf("analytics: insert: %w", err)
	}
	return id, nil
}

// sqlitePoll is the condition on votes of one poll, given its poll_id.
const sqlitePoll = `poll = (SELECT id FROM polls WHERE poll_id = ?)`

// Timeline implements Store. Votes are counted by step and profile, then
// each profile's count goes to each of its options.
func (s *SQLiteStore) Timeline(ctx context.Context, pollID string, from, to time.Time, step time.Duration) ([]Point, error) {
	sec := int64(step / time.Second)
	var b timelineBuilder
	var opts []string
	err := s.query(ctx, `SELECT c.t, p.options, c.n FROM (
			SELECT (time / ?) * ? AS t, profile, count(*) AS n FROM votes
			WHERE `+sqlitePoll+` AND time >= ? AND time < ? GROUP BY t, profile
		) AS c JOIN profiles p ON p.id = c.profile ORDER BY c.t`,
		[]any{sec, sec, pollID, from.Unix(), to.Unix()}, func(r *sql.Rows) error {
			var t, n int64
			var o []byte
			if err := r.Scan(&t, &o, &n); err != nil {
				return err
			}
			if err := decodeOptions(o, &opts); err != nil {
				return err
			}
			b.add(t, n)
			for _, o := range opts {
				b.option(t, o, n)
			}
			return nil
		})
	return b.points, err
}

// Breakdown implements Store. Votes are counted by profile, then each
// profile's count goes to its value of by and to each of its options.
func (s *SQLiteStore) Breakdown(ctx context.Context, pollID string, by Dimension) ([]Row, error) {
	if _, err := ParseDimension(string(by)); err != nil {
		return nil, err
	}
	col := string(by) // one of four column names of profiles
	var b breakdownBuilder
	var opts []string
	err := s.query(ctx, `SELECT p.`+col+`, p.options, c.n FROM (
			SELECT profile, count(*) AS n FROM votes WHERE `+sqlitePoll+` GROUP BY profile
		) AS c JOIN profiles p ON p.id = c.profile`, []any{pollID}, func(r *sql.Rows) error {
		var k string
		var o []byte
		var n int64
		if err := r.Scan(&k, &o, &n); err != nil {
			return err
		}
		if err := decodeOptions(o, &opts); err != nil {
			return err
		}
		b.votes(k, n)
		for _, o := range opts {
			b.option(k, o, n)
		}
		return nil
	})
	return b.result(), err
}

// decodeOptions decodes a JSON array of options into *opts, reusing it.
func decodeOptions(data []byte, opts *[]string) error {
	*opts = (*opts)[:0]
	return json.Unmarshal(data, opts)
}

// Export implements Store.
func (s *SQLiteStore) Export(ctx context.Context, pollID string, fn func(*Vote) error) error {
	var v Vote
	var opts []byte
	var t, seq, idx int64
	return s.query(ctx, `SELECT v.seq, v.idx, v.vote_id, v.time, p.options, p.region, p.country, p.device, p.referrer
		FROM votes v JOIN profiles p ON p.id = v.profile
		WHERE v.`+sqlitePoll+` ORDER BY v.seq, v.idx`, []any{pollID}, func(r *sql.Rows) error {
		if err := r.Scan(&seq, &idx, &v.VoteID, &t, &opts, &v.Region, &v.Country, &v.Device, &v.Referrer); err != nil {
			return err
		}
		v.Seq, v.Idx, v.PollID, v.Time = uint64(seq), uint32(idx), pollID, time.Unix(t, 0).UTC()
		if err := decodeOptions(opts, &v.Options); err != nil {
			return err
		}
		return fn(&v)
	})
}

// DeletePoll implements Store: the poll's rows and its entry in polls go
// in one transaction. Profiles, shared by the polls, stay.
func (s *SQLiteStore) DeletePoll(ctx context.Context, pollID string) (err error) {
	s.mu.Lock() // Insert's cache of poll ids must not keep the one deleted
	defer s.mu.Unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("analytics: delete poll: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM votes WHERE `+sqlitePoll, pollID); err != nil {
		return fmt.Errorf("analytics: delete poll: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM polls WHERE poll_id = ?`, pollID); err != nil {
		return fmt.Errorf("analytics: delete poll: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("analytics: delete poll: %w", err)
	}
	delete(s.polls, pollID)
	return nil
}

// query runs a query and calls each for every row.
func (s *SQLiteStore) query(ctx context.Context, q string, args []any, each func(*sql.Rows) error) error {
	rows, err := s.db.QueryContext(ctx, q, args...)
	return eachRow(rows, err, each)
}

// Ping implements Store.
func (s *SQLiteStore) Ping(ctx context.Context) error {
	return s.db.PingContext(ctx)
}

// Close implements Store.
func (s *SQLiteStore) Close() error {
	return s.db.Close()
}
