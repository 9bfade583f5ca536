package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pollcast/pollcast/internal/testsvc"
	"github.com/pollcast/pollcast/poll"
	"github.com/pollcast/pollcast/votelog"
)

// TestRebuildAtStart measures what DESIGN.md promises of a restart with the
// memory store: the time from start to serving when the log already holds
// POLLCAST_REBUILD_VOTES votes (10,000,000 for the published figure), with
// every vote counted. It writes the log straight into a data directory
// (POLLCAST_REBUILD_DIR keeps it between runs), then starts pollcast on it
// twice and reports each start. Skipped unless the variable is set: make
// bench runs it.
func TestRebuildAtStart(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("POLLCAST_REBUILD_VOTES"))
	if n <= 0 {
		t.Skip("set POLLCAST_REBUILD_VOTES to measure a rebuild (make bench does)")
	}
	dir := os.Getenv("POLLCAST_REBUILD_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	const shards, polls = 16, 20
	ids := writeLog(t, filepath.Join(dir, "nats"), n, shards, polls)

	for run := 1; run <= 2; run++ {
		cfg := Config{
			Addr: "127.0.0.1:0", Data: dir, Shards: shards, Region: "bench",
			AdminKey: testAdminKey, ShutdownTimeout: 10 * time.Second, LogLevel: "warn", LogFormat: "text",
		}
		m := NewMain(cfg, slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})), io.Discard)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		start, cpu := time.Now(), testsvc.CPUTime()
		err := m.Run(ctx)
		took, cpu := time.Since(start), testsvc.CPUTime()-cpu
		cancel()
		if err != nil {
			m.Close()
			t.Fatalf("start: %v", err)
		}
		a := &app{Main: m, t: t, url: "http://" + m.Addr(), client: &http.Client{Timeout: 30 * time.Second}}
		var total int64
		for _, id := range ids {
			total += a.total(id)
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		if total != int64(n) {
			t.Fatalf("start %d: results count %d votes, the log holds %d", run, total, n)
		}
		t.Logf("rebuild at start %d: %d logged votes counted in %v (%.0f votes/s), %v of CPU", run, n, took.Round(time.Millisecond), float64(n)/took.Seconds(), cpu.Round(10*time.Millisecond))
	}
}

// writeLog fills the vote log in dir with n votes spread over new polls
// (one vote per device, so the voter registry has n voters to remember),
// unless it already holds them, and returns the poll ids.
func writeLog(t *testing.T, dir string, n, shards, polls int) []string {
	t.Helper()
	ctx := context.Background()
	l := testsvc.StartLogIn(t, dir)
	defer l.Emb.Shutdown()
	cat := l.Catalog(t)
	idsFile := filepath.Join(dir, "rebuild-polls.txt")
	last, err := votelog.LastSeq(ctx, l.JS)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(idsFile); err == nil && last == uint64(n) {
		t.Logf("reusing the log of %d votes in %s", n, dir)
		return strings.Fields(string(b))
	} else if last != 0 {
		t.Fatalf("%s holds a log of %d votes, not the %d asked for: remove it", dir, last, n)
	}
	var ids []string
	now := time.Now()
	for range polls {
		p, err := poll.New(poll.CreateInput{
			Question: "Rebuild", Options: []poll.OptionInput{{Label: "A"}, {Label: "B"}, {Label: "C"}}, Dedupe: poll.DedupeDevice,
		}, "bench", now)
		if err != nil {
			t.Fatal(err)
		}
		if err := cat.CreatePoll(ctx, p); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, p.ID)
	}
	start := time.Now()
	const window = 4096
	futs := make([]jetstream.PubAckFuture, 0, window)
	wait := func() {
		for _, f := range futs {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				t.Fatal(err)
			}
		}
		futs = futs[:0]
	}
	var id, voter [16]byte
	options := [][]string{{"a"}, {"b"}, {"c"}}
	for i := range n {
		pid := ids[i%polls]
		_, _ = rand.Read(id[:])
		_, _ = rand.Read(voter[:])
		r := votelog.Record{
			VoteID: base64.RawURLEncoding.EncodeToString(id[:]), PollID: pid, Options: options[i%3], Time: now,
			Voter: voter[:], Region: "bench", Country: "FR", Device: "mobile", Referrer: "news.example.com",
		}
		f, err := l.JS.PublishAsync(votelog.VoteSubject(votelog.Shard(pid, shards), pid), r.Append(make([]byte, 0, 128)))
		if err != nil {
			t.Fatal(err)
		}
		if futs = append(futs, f); len(futs) == window {
			wait()
		}
	}
	wait()
	if err := os.WriteFile(idsFile, []byte(strings.Join(ids, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %d votes into the log in %v", n, time.Since(start).Round(time.Millisecond))
	if last, err := votelog.LastSeq(ctx, l.JS); err != nil || last != uint64(n) {
		t.Fatal(fmt.Errorf("log holds %d votes after writing %d: %v", last, n, err))
	}
	return ids
}

// TestRestartFromSnapshot measures a restart with snapshots on a log of
// POLLCAST_REBUILD_VOTES votes (1,000,000 and 10,000,000 for the published
// figures: the second must take at most 3 s and be within 20% of the
// first). The first start reads the whole log and saves a snapshot as it
// stops; the next two load it and read only what follows it. Each start
// must count every vote. Skipped unless the variable is set.
func TestRestartFromSnapshot(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("POLLCAST_REBUILD_VOTES"))
	if n <= 0 {
		t.Skip("set POLLCAST_REBUILD_VOTES to measure a restart from a snapshot (make bench does)")
	}
	dir := os.Getenv("POLLCAST_REBUILD_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	const shards, polls = 16, 20
	ids := writeLog(t, filepath.Join(dir, "nats"), n, shards, polls)
	if err := os.RemoveAll(filepath.Join(dir, "snapshots")); err != nil {
		t.Fatal(err)
	}
	for run := 1; run <= 3; run++ {
		cfg := Config{
			Addr: "127.0.0.1:0", Data: dir, Shards: shards, Region: "bench", SnapshotInterval: time.Hour,
			AdminKey: testAdminKey, ShutdownTimeout: 10 * time.Second, LogLevel: "warn", LogFormat: "text",
		}
		m := NewMain(cfg, slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})), io.Discard)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		start, cpu := time.Now(), testsvc.CPUTime()
		err := m.Run(ctx)
		took, cpu := time.Since(start), testsvc.CPUTime()-cpu
		cancel()
		if err != nil {
			m.Close()
			t.Fatalf("start: %v", err)
		}
		a := &app{Main: m, t: t, url: "http://" + m.Addr(), client: &http.Client{Timeout: 30 * time.Second}}
		var total int64
		for _, id := range ids {
			total += a.total(id)
		}
		from := m.snapLoaded
		saveStart := time.Now()
		if err := m.Close(); err != nil { // saves the snapshot the next start loads
			t.Fatal(err)
		}
		if total != int64(n) {
			t.Fatalf("start %d: results count %d votes, the log holds %d", run, total, n)
		}
		switch {
		case run == 1 && from != "":
			t.Fatalf("start 1 loaded %s, want a read of the whole log", from)
		case run > 1 && from == "":
			t.Fatalf("start %d loaded no snapshot", run)
		}
		name := "none"
		if from != "" {
			name = filepath.Base(from)
		}
		t.Logf("start %d (snapshot: %s): %d logged votes counted in %v, %v of CPU; stop with a snapshot took %v",
			run, name, n, took.Round(time.Millisecond), cpu.Round(10*time.Millisecond), time.Since(saveStart).Round(time.Millisecond))
	}
}
