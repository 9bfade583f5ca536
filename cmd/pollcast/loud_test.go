package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

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
