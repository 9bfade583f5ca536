package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pollcast/pollcast/analytics"
	"github.com/pollcast/pollcast/internal/testsvc"
	"github.com/pollcast/pollcast/votelog"
)

// TestShardsFixedAtFirstStart: a data directory started with --shards 4
// refuses to start with --shards 8, naming both counts, and starts again
// with 4, its votes still counted.
func TestShardsFixedAtFirstStart(t *testing.T) {
	dir := t.TempDir()
	a := startApp(t, func(c *Config) { c.Data, c.Shards = dir, 4 })
	id := a.createPoll(nil)["id"].(string)
	if r := a.do("POST", "/v1/polls/"+id+"/votes", `{"options":["a"],"voter":"v1"}`); r.Status != 202 {
		t.Fatalf("vote: %d %s", r.Status, r.Body)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}

	cfg := a.cfg
	cfg.Shards = 8
	m := NewMain(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), io.Discard)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := m.Run(ctx)
	m.Close()
	var changed *votelog.ShardsChangedError
	if !errors.As(err, &changed) || changed.Stored != 4 || changed.Configured != 8 {
		t.Fatalf("start with --shards 8 on a log of 4: %v, want a ShardsChangedError naming 4 and 8", err)
	}
	for _, want := range []string{"--shards 4", "--shards 8", "start it with --shards 4"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not say %q", err, want)
		}
	}

	b := startApp(t, func(c *Config) { c.Data, c.Shards = dir, 4 })
	if got := b.total(id); got != 1 {
		t.Fatalf("after the refused start: total %d, want 1", got)
	}
}

// TestLogFullThenRoom: the log's size limit reached, votes get 503
// overloaded with Retry-After, /readyz fails naming the reason and
// pollcast_log_refusing shows it; once the limit is raised, with no vote
// sent meanwhile, /readyz recovers by itself, votes get 202 again, and the
// results count exactly the 202s.
func TestLogFullThenRoom(t *testing.T) {
	a := startApp(t)
	id := a.createPoll(nil)["id"].(string)
	js := a.testJetStream()
	setStreamMaxBytes(t, js, func(bytes uint64) int64 { return int64(bytes) + 32<<10 })

	accepted := 0
	vote := func(i int) reply {
		t.Helper()
		r := a.do("POST", "/v1/polls/"+id+"/votes", fmt.Sprintf(`{"options":["%c"],"voter":"v%d"}`, 'a'+i%3, i))
		if r.Status == 202 {
			accepted++
		}
		return r
	}
	var refused reply
	for i := 0; i < 10_000; i++ {
		if refused = vote(i); refused.Status != 202 {
			break
		}
	}
	if refused.Status != 503 || refused.Code() != "overloaded" || refused.Header.Get("Retry-After") == "" {
		t.Fatalf("vote on a full log: %d %v %s, want 503 overloaded with Retry-After", refused.Status, refused.Header, refused.Body)
	}
	t.Logf("%d votes accepted before the log was full; refused: %s", accepted, refused.Body)
	r := a.do("GET", "/readyz", nil)
	failing, _ := r.JSON()["failing"].(map[string]any)
	if why, _ := failing["log"].(string); r.Status != 503 || !strings.Contains(why, "refuses writes (stream_limit)") {
		t.Fatalf("/readyz on a full log: %d %s, want 503 with the log refusing writes (stream_limit)", r.Status, r.Body)
	}
	if got := a.metric(`pollcast_log_refusing{reason="stream_limit"}`); got != "1" {
		t.Fatalf("pollcast_log_refusing{reason=\"stream_limit\"} = %q while full, want 1", got)
	}

	setStreamMaxBytes(t, js, func(uint64) int64 { return -1 })
	eventually(t, 10*time.Second, "/readyz recovers with no vote sent", func() bool { return a.do("GET", "/readyz", nil).Status == 200 })
	if got := a.metric(`pollcast_log_refusing{reason="stream_limit"}`); got != "0" {
		t.Fatalf("pollcast_log_refusing{reason=\"stream_limit\"} = %q after room returned, want 0", got)
	}
	for i := 10_000; i < 10_050; i++ {
		if r := vote(i); r.Status != 202 {
			t.Fatalf("vote once the log has room: %d %s", r.Status, r.Body)
		}
	}
	eventually(t, 30*time.Second, "the results count every 202", func() bool { return a.total(id) >= int64(accepted) })
	if res := a.results(id); res["total"] != float64(accepted) || res["voters"] != float64(accepted) {
		t.Fatalf("results %v, want total and voters %d (the 202s)", res, accepted)
	}
}

// testJetStream connects a JetStream client to the app's embedded log.
func (a *app) testJetStream() jetstream.JetStream {
	a.t.Helper()
	nc, err := a.emb.Connect("test")
	if err != nil {
		a.t.Fatal(err)
	}
	a.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		a.t.Fatal(err)
	}
	return js
}

// setStreamMaxBytes sets the VOTES stream's size limit to limit(bytes it
// holds now).
func setStreamMaxBytes(tb testing.TB, js jetstream.JetStream, limit func(bytes uint64) int64) {
	tb.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, votelog.StreamName)
	if err != nil {
		tb.Fatal(err)
	}
	info := s.CachedInfo()
	cfg := info.Config
	cfg.MaxBytes = limit(info.State.Bytes)
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		tb.Fatal(err)
	}
}

// metric returns the value of one series of /metrics as written there,
// "" when absent.
func (a *app) metric(series string) string {
	a.t.Helper()
	for line := range strings.Lines(string(a.do("GET", "/metrics", nil).Body)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), series+" "); ok {
			return v
		}
	}
	return ""
}

// TestNewLogBesideOldRedisAndAnalytics: a node on Redis takes votes; then a
// node starts with a new, empty log (its NATS directory gone) beside the
// same Redis and the same SQLite analytics file. The tally shards, whose
// watermarks are past the new log's end, rebuild from it and say so; the
// analytics rows past its end go; every new 202 is counted exactly, in
// results and in analytics.
func TestNewLogBesideOldRedisAndAnalytics(t *testing.T) {
	srv := testsvc.StartRedis(t)
	dir := t.TempDir()
	cfg := func(c *Config) { c.Redis = []string{"redis://" + srv.Addr + "/0"}; c.Data = dir }
	a := startApp(t, cfg)
	var old []string
	for covered := map[int]bool{}; len(covered) < a.cfg.Shards; {
		id := a.createPoll(nil)["id"].(string)
		covered[votelog.Shard(id, a.cfg.Shards)] = true
		old = append(old, id)
	}
	for _, id := range old {
		for i := range 50 {
			if r := a.do("POST", "/v1/polls/"+id+"/votes", fmt.Sprintf(`{"options":["a"],"voter":"old-%d"}`, i)); r.Status != 202 {
				t.Fatalf("vote: %d %s", r.Status, r.Body)
			}
		}
	}
	for _, id := range old {
		eventually(t, 30*time.Second, "the old votes counted", func() bool { return a.total(id) == 50 })
	}
	eventually(t, 30*time.Second, "the old votes in analytics", func() bool { return a.sink.Stored() >= uint64(50*len(old)) })
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "nats")); err != nil {
		t.Fatal(err)
	}

	logs := &lockedBuffer{}
	b := startAppLogging(t, logs, cfg)
	id := b.createPoll(nil)["id"].(string)
	const n = 30 // fewer than any shard's old watermark: without a rebuild, all skipped
	for i := range n {
		if r := b.do("POST", "/v1/polls/"+id+"/votes", fmt.Sprintf(`{"options":["%c"],"voter":"new-%d"}`, 'a'+i%2, i)); r.Status != 202 {
			t.Fatalf("vote on the new log: %d %s", r.Status, r.Body)
		}
	}
	eventually(t, 30*time.Second, "every new 202 counted", func() bool { return b.total(id) >= n })
	if r := b.results(id); r["total"] != float64(n) || r["voters"] != float64(n) {
		t.Fatalf("results %v, want total and voters %d", r, n)
	}
	for shard := range b.cfg.Shards {
		if !strings.Contains(logs.String(), fmt.Sprintf("shard=%d ", shard)) {
			t.Fatalf("no warning of shard %d rebuilt in the log output:\n%s", shard, logs)
		}
	}
	if !strings.Contains(logs.String(), "analytics: the store holds votes past the end of the log") {
		t.Fatalf("no warning of analytics rows past the log's end:\n%s", logs)
	}

	ctx := context.Background()
	eventually(t, 30*time.Second, "the new votes in analytics", func() bool { return b.sink.Stored() >= n })
	rows := func(id string) int {
		k := 0
		if err := b.astore.Export(ctx, id, func(*analytics.Vote) error { k++; return nil }); err != nil {
			t.Fatal(err)
		}
		return k
	}
	if got := rows(id); got != n {
		t.Fatalf("%d analytics rows of the new poll, want %d", got, n)
	}
	for _, id := range old {
		if got := rows(id); got != 0 {
			t.Fatalf("%d analytics rows of a poll of the lost log, want none", got)
		}
	}
	if last, err := b.astore.LastSeq(ctx); err != nil || last != n {
		t.Fatalf("analytics' last sequence %d (%v), want the new log's %d", last, err, n)
	}
}

// startAppLogging is startApp with the log output at warning level and
// above also written to w.
func startAppLogging(t testing.TB, w io.Writer, edit ...func(*Config)) *app {
	t.Helper()
	cfg := Config{
		Addr: "127.0.0.1:0", Data: t.TempDir(), VoteRate: 0, Shards: 4, Region: "test",
		AdminKey: testAdminKey, ShutdownTimeout: 5 * time.Second, LogLevel: "warn", LogFormat: "text",
	}
	for _, e := range edit {
		e(&cfg)
	}
	logger := slog.New(slog.NewTextHandler(io.MultiWriter(testWriter{t}, w), &slog.HandlerOptions{Level: slog.LevelWarn}))
	m := NewMain(cfg, logger, io.Discard)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := m.Run(ctx); err != nil {
		m.Close()
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return &app{Main: m, t: t, url: "http://" + m.Addr(), client: &http.Client{Timeout: 30 * time.Second}}
}

// lockedBuffer is a bytes.Buffer written by a logger from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
