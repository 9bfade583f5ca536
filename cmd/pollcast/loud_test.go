package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

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
