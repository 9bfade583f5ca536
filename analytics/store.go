package analytics

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pollcast/pollcast/poll"
)

//go:embed migrations
var migrations embed.FS

// Vote is one stored vote: a row of the analytics store.
type Vote struct {
	// Seq is the stream sequence of the log message holding the vote. A
	// message may hold several votes of one poll (a pack); they all share
	// its Seq.
	Seq uint64
	// Idx is the vote's position in its log message: 0 for a message
	// holding one vote, 0 to n-1 for a pack of n. (Seq, Idx) is the row's
	// identity.
	Idx      uint32
	VoteID   string
	PollID   string
	Options  []string
	Time     time.Time // whole seconds, UTC
	Region   string
	Country  string
	Device   string
	Referrer string
}

// Point is one step of a timeline.
type Point struct {
	T        time.Time        `json:"t"`
	Votes    int64            `json:"votes"`
	ByOption map[string]int64 `json:"by_option"`
}

// Row is one line of a breakdown.
type Row struct {
	Key      string           `json:"key"`
	Votes    int64            `json:"votes"`
	ByOption map[string]int64 `json:"by_option"`
}

// Dimension is what a breakdown groups votes by.
type Dimension string

const (
	ByCountry  Dimension = "country"
	ByRegion   Dimension = "region"
	ByDevice   Dimension = "device"
	ByReferrer Dimension = "referrer"
)

// ParseDimension validates a breakdown dimension.
func ParseDimension(s string) (Dimension, error) {
	switch d := Dimension(s); d {
	case ByCountry, ByRegion, ByDevice, ByReferrer:
		return d, nil
	}
	return "", poll.Invalid("by", "must be country, region, device or referrer")
}

// Steps are the timeline steps of API.md.
var Steps = map[string]time.Duration{"1m": time.Minute, "5m": 5 * time.Minute, "1h": time.Hour, "1d": 24 * time.Hour}

// MaxPoints caps the points of one timeline.
const MaxPoints = 10_000

// Store is an analytics store. The sink is its only writer; the API reads
// it concurrently.
type Store interface {
	// LastSeq returns the largest sequence stored, 0 when empty: the sink
	// resumes after it, so it stores every vote of a log message in one
	// Insert.
	LastSeq(ctx context.Context) (uint64, error)
	// DeleteAfter removes every row whose Seq is past seq and returns once
	// no query sees them: the sink calls it when the log lost its tail
	// (behind.go), before it reads on. Deleting nothing is not an error.
	DeleteAfter(ctx context.Context, seq uint64) error
	// Insert stores votes atomically (all or none), at most 1,048,576 of
	// them. Votes whose (Seq, Idx) is already stored are not stored twice
	// (or are collapsed by every query): replaying a batch is harmless.
	Insert(ctx context.Context, votes []Vote) error
	// Timeline counts a poll's votes in steps of step (aligned to the Unix
	// epoch) from from (inclusive) to to (exclusive). Only steps with votes
	// are returned, in time order.
	Timeline(ctx context.Context, pollID string, from, to time.Time, step time.Duration) ([]Point, error)
	// Breakdown counts a poll's votes by a dimension, most votes first.
	// Votes with an empty value count under "unknown".
	Breakdown(ctx context.Context, pollID string, by Dimension) ([]Row, error)
	// Export calls fn with every vote of a poll, in log order (by Seq, then
	// Idx), streaming: the store never holds the whole result. It stops at
	// fn's first error.
	Export(ctx context.Context, pollID string, fn func(*Vote) error) error
	// DeletePoll removes every row of a poll (the erasure of a purged
	// poll) and returns only once no query sees any of them. It is
	// idempotent. Rows of the poll inserted after it are stored as any
	// others: the caller first makes sure the sink holds none on its way
	// (see votelog.PublishPurgeMark).
	DeletePoll(ctx context.Context, pollID string) error
	// Ping checks that the store answers.
	Ping(ctx context.Context) error
	// Close releases the store's connections.
	Close() error
}

// FillTimeline returns the points of every step from from to to, the
// missing ones with zero votes.
func FillTimeline(sparse []Point, from, to time.Time, step time.Duration) []Point {
	start := from.Truncate(step)
	var out []Point
	i := 0
	for t := start; t.Before(to); t = t.Add(step) {
		if i < len(sparse) && sparse[i].T.Equal(t) {
			out = append(out, sparse[i])
			i++
			continue
		}
		out = append(out, Point{T: t, ByOption: map[string]int64{}})
	}
	return out
}

// unknown names the empty value in breakdowns.
const unknown = "unknown"

// timelineBuilder gathers the rows of a store's two timeline queries (votes
// per step, then votes per step and option) into points.
type timelineBuilder struct {
	points []Point
	index  map[int64]int
}

func (b *timelineBuilder) votes(t, n int64) {
	if b.index == nil {
		b.index = map[int64]int{}
	}
	b.index[t] = len(b.points)
	b.points = append(b.points, Point{T: time.Unix(t, 0).UTC(), Votes: n, ByOption: map[string]int64{}})
}

// add counts n more votes at t, which is at or after every t before.
func (b *timelineBuilder) add(t, n int64) {
	if i, ok := b.index[t]; ok {
		b.points[i].Votes += n
		return
	}
	b.votes(t, n)
}

func (b *timelineBuilder) option(t int64, o string, n int64) {
	if i, ok := b.index[t]; ok {
		b.points[i].ByOption[o] += n
	}
}

// breakdownBuilder gathers the rows of a store's two breakdown queries
// (votes per key, then per key and option) into rows, most votes first.
type breakdownBuilder struct {
	rows  []Row
	index map[string]int
}

func keyOf(k string) string {
	if k == "" {
		return unknown
	}
	return k
}

func (b *breakdownBuilder) votes(k string, n int64) {
	k = keyOf(k)
	if b.index == nil {
		b.index = map[string]int{}
	}
	if i, ok := b.index[k]; ok {
		b.rows[i].Votes += n
		return
	}
	b.index[k] = len(b.rows)
	b.rows = append(b.rows, Row{Key: k, Votes: n, ByOption: map[string]int64{}})
}

func (b *breakdownBuilder) option(k, o string, n int64) {
	if i, ok := b.index[keyOf(k)]; ok {
		b.rows[i].ByOption[o] += n
	}
}

func (b *breakdownBuilder) result() []Row {
	slices.SortFunc(b.rows, func(a, b Row) int {
		if a.Votes != b.Votes {
			if a.Votes > b.Votes {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Key, b.Key)
	})
	return b.rows
}

// migrationsOf lists the embedded migrations of a store kind in order.
func migrationsOf(kind string) ([]migration, error) {
	entries, err := fs.ReadDir(migrations, "migrations/"+kind)
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		v, err := strconv.Atoi(strings.SplitN(e.Name(), "_", 2)[0])
		if err != nil {
			continue
		}
		data, err := fs.ReadFile(migrations, "migrations/"+kind+"/"+e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, sql: string(data)})
	}
	slices.SortFunc(out, func(a, b migration) int { return a.version - b.version })
	return out, nil
}

type migration struct {
	version int
	sql     string
}

// A statement is one statement of a migration.
type statement struct {
	sql string // without its comments
	// when, if not empty, is a query answering one number (a UInt8 in
	// ClickHouse, as a comparison gives): the statement runs only when it
	// is not 0. It comes from a comment line "-- when: SELECT ..." before
	// the statement, and lets a store without transactions (ClickHouse) run
	// a migration cut short again: a step that cannot be written to be
	// idempotent asks whether it is still to be done.
	when string
}

// statements splits a migration into its statements, at every semicolon
// outside comments. Comments, from "--" to the end of the line (so no "--"
// or ";" in string literals), are dropped.
func (m migration) statements() []statement {
	var out []statement
	var cur statement
	var b strings.Builder
	end := func() {
		if cur.sql = strings.TrimSpace(b.String()); cur.sql != "" {
			out = append(out, cur)
		}
		cur = statement{}
		b.Reset()
	}
	for _, line := range strings.Split(m.sql, "\n") {
		if q, ok := strings.CutPrefix(strings.TrimSpace(line), "-- when:"); ok {
			cur.when = strings.TrimSpace(q)
			continue
		}
		if i := strings.Index(line, "--"); i >= 0 {
			line = line[:i]
		}
		for {
			i := strings.IndexByte(line, ';')
			if i < 0 {
				break
			}
			b.WriteString(line[:i])
			end()
			line = line[i+1:]
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	end()
	return out
}

// rows is what both SQL drivers' result sets offer.
type rows interface {
	Next() bool
	Err() error
	Close() error
}

// eachRow calls each for every row of a query's result (or returns the
// query's error), then closes the rows.
func eachRow[R rows](r R, queryErr error, each func(R) error) error {
	if queryErr != nil {
		return fmt.Errorf("analytics: query: %w", queryErr)
	}
	defer r.Close()
	for r.Next() {
		if err := each(r); err != nil {
			return err
		}
	}
	if err := r.Err(); err != nil {
		return fmt.Errorf("analytics: query: %w", err)
	}
	return nil
}
