package analytics

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/pollcast/pollcast/internal/retry"
)

// ClickHouseStore keeps analytics in ClickHouse, over the native protocol:
// the store for distributed deployments and large polls. Its SQL runs on
// ClickHouse 18.16 (Debian's) as on current releases: INSERTs name their
// columns, times are DateTime, and the table is a ReplacingMergeTree keyed
// by (poll_id, seq, idx) read with FINAL, so a replayed batch never counts
// twice.
type ClickHouseStore struct {
	conn driver.Conn
}

var _ Store = (*ClickHouseStore)(nil)

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// OpenClickHouse connects to the ClickHouse of dsn (for example
// clickhouse://127.0.0.1:9000/pollcast), creates its database if needed and
// applies the embedded migrations.
func OpenClickHouse(ctx context.Context, dsn string) (*ClickHouseStore, error) {
	s, err := openClickHouse(ctx, dsn)
	if err != nil {
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		s.conn.Close()
		return nil, err
	}
	return s, nil
}

// openClickHouse connects to the ClickHouse of dsn and creates its database
// if needed, without migrating it.
func openClickHouse(ctx context.Context, dsn string) (*ClickHouseStore, error) {
	opts, err := clickhouse.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("analytics: clickhouse dsn: %w", err)
	}
	db := opts.Auth.Database
	if db == "" {
		db = "default"
	}
	if !identRE.MatchString(db) {
		return nil, fmt.Errorf("analytics: clickhouse database name %q", db)
	}
	opts.DialTimeout = 5 * time.Second
	admin := *opts
	admin.Auth.Database = "default"
	if err := withConn(&admin, func(c driver.Conn) error {
		return c.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+db)
	}); err != nil {
		return nil, fmt.Errorf("analytics: clickhouse create database: %w", err)
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("analytics: clickhouse open: %w", err)
	}
	return &ClickHouseStore{conn: conn}, nil
}

func withConn(opts *clickhouse.Options, fn func(driver.Conn) error) error {
	c, err := clickhouse.Open(opts)
	if err != nil {
		return err
	}
	defer c.Close()
	return fn(c)
}

func (s *ClickHouseStore) migrate(ctx context.Context) error {
	return s.migrateTo(ctx, math.MaxInt)
}

// migrateTo applies the migrations not recorded yet up to version last.
func (s *ClickHouseStore) migrateTo(ctx context.Context, last int) error {
	if err := s.conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32) ENGINE = TinyLog`); err != nil {
		return fmt.Errorf("analytics: migrate: %w", err)
	}
	ms, err := migrationsOf("clickhouse")
	if err != nil {
		return fmt.Errorf("analytics: migrations: %w", err)
	}
	for _, m := range ms {
		if m.version > last {
			break
		}
		var n uint64
		if err := s.conn.QueryRow(ctx, `SELECT count() FROM schema_migrations WHERE version = ?`, uint32(m.version)).Scan(&n); err != nil {
			return fmt.Errorf("analytics: migrate: %w", err)
		}
		if n > 0 {
			continue
		}
		if err := s.run(ctx, m.version, m.statements()); err != nil {
			return err
		}
		// INSERTs go as data blocks with named columns: the only form
		// ClickHouse 18.16 takes over the native protocol.
		b, err := s.conn.PrepareBatch(ctx, `INSERT INTO schema_migrations (version)`)
		if err != nil {
			return fmt.Errorf("analytics: migrate: %w", err)
		}
		if err := b.Append(uint32(m.version)); err != nil {
			return fmt.Errorf("analytics: migrate: %w", err)
		}
		if err := b.Send(); err != nil {
			return fmt.Errorf("analytics: migrate: %w", err)
		}
	}
	return nil
}

// run runs the statements of migration version. ClickHouse has no
// transactions: a migration cut short is run again from its first
// statement, so each statement is idempotent (IF NOT EXISTS) or guarded by
// a when query answering 1 while it is still to be done.
func (s *ClickHouseStore) run(ctx context.Context, version int, stmts []statement) error {
	for _, st := range stmts {
		if st.when != "" {
			var todo uint8
			if err := s.conn.QueryRow(ctx, st.when).Scan(&todo); err != nil {
				return fmt.Errorf("analytics: migration %d: %s: %w", version, st.when, err)
			}
			if todo == 0 {
				continue
			}
		}
		if err := s.conn.Exec(ctx, st.sql); err != nil {
			return fmt.Errorf("analytics: migration %d: %w", version, err)
		}
	}
	return nil
}

// LastSeq implements Store.
func (s *ClickHouseStore) LastSeq(ctx context.Context) (uint64, error) {
	var seq uint64
	if err := s.conn.QueryRow(ctx, `SELECT max(seq) FROM votes`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("analytics: last seq: %w", err)
	}
	return seq, nil
}

// DeleteAfter implements Store. ALTER TABLE ... DELETE is a mutation,
// run in the background by ClickHouse (18.16 as today's): it returns once
// no mutation of the table is left to do, polling system.mutations.
func (s *ClickHouseStore) DeleteAfter(ctx context.Context, seq uint64) error {
	if err := s.conn.Exec(ctx, fmt.Sprintf(`ALTER TABLE votes DELETE WHERE seq > %d`, seq)); err != nil {
		return fmt.Errorf("analytics: delete after %d: %w", seq, err)
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		var pending uint64
		err := s.conn.QueryRow(ctx, `SELECT count() FROM system.mutations WHERE database = currentDatabase() AND table = 'votes' AND is_done = 0`).Scan(&pending)
		if err != nil {
			return fmt.Errorf("analytics: delete after %d: wait for the mutation: %w", seq, err)
		}
		if pending == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("analytics: delete after %d: wait for the mutation: %w", seq, ctx.Err())
		case <-tick.C:
		}
	}
}

// MaxInsert is the most rows one ClickHouse INSERT stores atomically.
const MaxInsert = 1 << 20

// Insert implements Store: one INSERT into the table's single partition,
// atomic up to MaxInsert rows.
func (s *ClickHouseStore) Insert(ctx context.Context, votes []Vote) error {
	if len(votes) > MaxInsert {
		return fmt.Errorf("analytics: insert of %d rows is over the atomic limit %d", len(votes), MaxInsert)
	}
	b, err := s.conn.PrepareBatch(ctx, `INSERT INTO votes (seq, idx, vote_id, poll_id, options, time, region, country, device, referrer)`)
	if err != nil {
		return fmt.Errorf("analytics: insert: %w", err)
	}
	for i := range votes {
		v := &votes[i]
		if err := b.Append(v.Seq, v.Idx, v.VoteID, v.PollID, v.Options, v.Time, v.Region, v.Country, v.Device, v.Referrer); err != nil {
			_ = b.Abort()
			return fmt.Errorf("analytics: insert: %w", err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("analytics: insert: %w", err)
	}
	return nil
}

// Timeline implements Store.
func (s *ClickHouseStore) Timeline(ctx context.Context, pollID string, from, to time.Time, step time.Duration) ([]Point, error) {
	sec := uint64(step / time.Second)
	args := []any{sec, sec, pollID, uint64(from.Unix()), uint64(to.Unix())}
	const where = ` FROM votes FINAL WHERE poll_id = ? AND toUInt32(time) >= ? AND toUInt32(time) < ? `
	var b timelineBuilder
	err := s.query(ctx, `SELECT toUInt64(intDiv(toUInt32(time), ?) * ?) AS t, count()`+where+`GROUP BY t ORDER BY t`, args, func(r driver.Rows) error {
		var t, n uint64
		if err := r.Scan(&t, &n); err != nil {
			return err
		}
		b.votes(int64(t), int64(n))
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = s.query(ctx, `SELECT toUInt64(intDiv(toUInt32(time), ?) * ?) AS t, arrayJoin(options) AS o, count()`+where+`GROUP BY t, o`, args, func(r driver.Rows) error {
		var t, n uint64
		var o string
		if err := r.Scan(&t, &o, &n); err != nil {
			return err
		}
		b.option(int64(t), o, int64(n))
		return nil
	})
	return b.points, err
}

// Breakdown implements Store.
func (s *ClickHouseStore) Breakdown(ctx context.Context, pollID string, by Dimension) ([]Row, error) {
	if _, err := ParseDimension(string(by)); err != nil {
		return nil, err
	}
	col := string(by) // one of four column names
	var b breakdownBuilder
	err := s.query(ctx, `SELECT `+col+` AS k, count() FROM votes FINAL WHERE poll_id = ? GROUP BY k`, []any{pollID}, func(r driver.Rows) error {
		var k string
		var n uint64
		if err := r.Scan(&k, &n); err != nil {
			return err
		}
		b.votes(k, int64(n))
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = s.query(ctx, `SELECT `+col+` AS k, arrayJoin(options) AS o, count() FROM votes FINAL WHERE poll_id = ? GROUP BY k, o`, []any{pollID}, func(r driver.Rows) error {
		var k, o string
		var n uint64
		if err := r.Scan(&k, &o, &n); err != nil {
			return err
		}
		b.option(k, o, int64(n))
		return nil
	})
	return b.result(), err
}

// Export implements Store.
func (s *ClickHouseStore) Export(ctx context.Context, pollID string, fn func(*Vote) error) error {
	var v Vote
	return s.query(ctx, `SELECT seq, idx, vote_id, poll_id, options, time, region, country, device, referrer
		FROM votes FINAL WHERE poll_id = ? ORDER BY seq, idx`, []any{pollID}, func(r driver.Rows) error {
		v.Options = v.Options[:0]
		if err := r.Scan(&v.Seq, &v.Idx, &v.VoteID, &v.PollID, &v.Options, &v.Time, &v.Region, &v.Country, &v.Device, &v.Referrer); err != nil {
			return err
		}
		v.Time = v.Time.UTC()
		return fn(&v)
	})
}

// DeletePoll implements Store. ALTER TABLE ... DELETE is a mutation that
// ClickHouse runs in the background (and 18.16 cannot be asked to wait
// for), so DeletePoll then waits until no mutation of the table is left
// undone, or ctx ends. Parts inserted after the ALTER are not touched by it.
func (s *ClickHouseStore) DeletePoll(ctx context.Context, pollID string) error {
	if err := s.conn.Exec(ctx, `ALTER TABLE votes DELETE WHERE poll_id = ?`, pollID); err != nil {
		return fmt.Errorf("analytics: delete poll: %w", err)
	}
	wait := retry.Backoff{Min: 20 * time.Millisecond, Max: 500 * time.Millisecond}
	for {
		var undone uint64
		err := s.conn.QueryRow(ctx, `SELECT count() FROM system.mutations
			WHERE database = currentDatabase() AND table = 'votes' AND is_done = 0`).Scan(&undone)
		if err != nil {
			return fmt.Errorf("analytics: delete poll: mutations: %w", err)
		}
		if undone == 0 {
			return nil
		}
		if err := retry.Sleep(ctx, wait.Next()); err != nil {
			return fmt.Errorf("analytics: delete poll: waiting for the mutation: %w", err)
		}
	}
}

// query runs a query and calls each for every row.
func (s *ClickHouseStore) query(ctx context.Context, q string, args []any, each func(driver.Rows) error) error {
	rows, err := s.conn.Query(ctx, q, args...)
	return eachRow(rows, err, each)
}

// Ping implements Store.
func (s *ClickHouseStore) Ping(ctx context.Context) error {
	if err := s.conn.Ping(ctx); err != nil {
		return fmt.Errorf("analytics: clickhouse: %w", err)
	}
	return nil
}

// Close implements Store.
func (s *ClickHouseStore) Close() error {
	return s.conn.Close()
}
