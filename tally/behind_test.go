package tally_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pollcast/pollcast/internal/testsvc"
	"github.com/pollcast/pollcast/tally"
	"github.com/pollcast/pollcast/votelog"
)

// TestTallyRebuildsShardsAheadOfTheLog: when the log loses its tail (here:
// a new, empty log beside a store that folded an old one), the shards
// whose watermark is past its end are reset and folded again from the
// start of the log, found at start and while running; every vote of the
// new log is counted exactly, the old log's counts are gone, and the log
// output names the shard, its watermark and the log's last sequence.
func TestTallyRebuildsShardsAheadOfTheLog(t *testing.T) {
	stores := []struct {
		name string
		new  func(t *testing.T) tally.Store
	}{
		{"memory", func(*testing.T) tally.Store { return tally.NewMemoryStore() }},
		{"redis", func(t *testing.T) tally.Store {
			rdb, prefix := testsvc.Redis(t)
			s, err := tally.NewRedisStore(rdb, tally.RedisConfig{Prefix: prefix, Shards: shards})
			if err != nil {
				t.Fatal(err)
			}
			return s
		}},
	}
	for _, st := range stores {
		for _, mode := range readerModes {
			t.Run(st.name+"/at start/"+mode.name, func(t *testing.T) {
				e := newEnv(t)
				store := st.new(t)
				p, q := e.newPoll(t), e.pollElsewhere(t)
				first := e.start(t, store)
				e.logVotes(t, p, 300, 100)
				e.logVotes(t, q, 50, 0)
				waitTotal(t, store, p, 300)
				waitTotal(t, store, q, 50)
				first.Close()

				e.newLog(t)
				e.logVotes(t, p, 120, 40)
				logs := &syncBuffer{}
				e.startWith(t, store, tally.Config{Shards: shards, Logger: slog.New(slog.NewTextHandler(logs, nil))}, mode.opts...)
				checkRebuilt(t, e, store, logs, p, q, 120, 40)
			})
		}
		t.Run(st.name+"/while running", func(t *testing.T) {
			e := newEnv(t)
			store := st.new(t)
			p, q := e.newPoll(t), e.pollElsewhere(t)
			logs := &syncBuffer{}
			e.startWith(t, store, tally.Config{Shards: shards, LogCheck: 20 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(logs, nil))})
			e.logVotes(t, p, 300, 100)
			e.logVotes(t, q, 50, 0)
			waitTotal(t, store, p, 300)
			waitTotal(t, store, q, 50)

			e.newLog(t)
			e.logVotes(t, p, 120, 40)
			checkRebuilt(t, e, store, logs, p, q, 120, 40)
			// The rebuilt shards follow the new log.
			e.logVotes(t, p, 30, 0)
			e.logVotes(t, q, 7, 0)
			waitTotal(t, store, p, 150)
			waitTotal(t, store, q, 7)
		})
	}
}

// checkRebuilt checks that the store counts only the new log: n votes of
// voters distinct voters for p, none for q, and that the log output said
// why.
func checkRebuilt(t *testing.T, e *env, store tally.Store, logs *syncBuffer, p, q string, n, voters int64) {
	t.Helper()
	// The counts go from the old log's to the new one's: wait for the
	// new log's total, then hold the counts to it exactly.
	testsvc.Eventually(t, 10*time.Second, fmt.Sprintf("total %d, the new log's", n), func() bool {
		return counts(t, store, p).Total == n && counts(t, store, q).Total == 0
	})
	c := waitTotal(t, store, p, n)
	if c.Voters != voters || c.Options["a"] != n/2 || c.Options["b"] != n/2 {
		t.Fatalf("counts of the new log %+v, want %d votes of %d voters, half a, half b", c, n, voters)
	}
	shard := votelog.Shard(p, e.shards)
	testsvc.Eventually(t, 10*time.Second, "a warning naming the shard", func() bool {
		return strings.Contains(logs.String(), "level=WARN msg=\"tally: the shard's watermark is past the end of the log")
	})
	for line := range strings.Lines(logs.String()) {
		if strings.Contains(line, "past the end of the log") && strings.Contains(line, fmt.Sprintf("shard=%d ", shard)) &&
			strings.Contains(line, "watermark=") && strings.Contains(line, "log_last_seq=") {
			return
		}
	}
	t.Fatalf("no warning names shard %d, its watermark and the log's last sequence:\n%s", shard, logs)
}

// pollElsewhere returns a new poll on another shard than the polls before
// it would mostly be: the first poll whose shard is not that of a poll made
// just before.
func (e *env) pollElsewhere(tb testing.TB) string {
	tb.Helper()
	ref := votelog.Shard(e.newPoll(tb), e.shards)
	for {
		if id := e.newPoll(tb); votelog.Shard(id, e.shards) != ref {
			return id
		}
	}
}

// newLog replaces the VOTES stream by a new, empty one: a log that lost
// its tail.
func (e *env) newLog(tb testing.TB) {
	tb.Helper()
	ctx := context.Background()
	if err := e.js.DeleteStream(ctx, votelog.StreamName); err != nil {
		tb.Fatal(err)
	}
	if _, err := votelog.EnsureStream(ctx, e.js, votelog.StreamConfig{}); err != nil {
		tb.Fatal(err)
	}
}

// syncBuffer is a bytes.Buffer for a logger written from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
