package votelog_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/pollcast/pollcast/internal/testsvc"
	"github.com/pollcast/pollcast/votelog"
)

// TestEnsureStreamShards: the shard count is recorded at the log's first
// start; a start with another count fails naming both, a start with the
// same count or without one (0) passes and keeps the record, and a log
// without a record adopts the configured count.
func TestEnsureStreamShards(t *testing.T) {
	ctx := context.Background()
	js := testsvc.StartLog(t).JS // its stream was made without a count

	if n, err := votelog.StoredShards(ctx, js); err != nil || n != 0 {
		t.Fatalf("a log made without a count records %d (%v), want 0", n, err)
	}
	steps := []struct {
		name    string
		shards  int
		wantErr bool
		stored  int
	}{
		{name: "an old log adopts the configured count", shards: 4, stored: 4},
		{name: "the same count again", shards: 4, stored: 4},
		{name: "another count is refused", shards: 8, wantErr: true, stored: 4},
		{name: "no count keeps the record", shards: 0, stored: 4},
		{name: "another count is still refused", shards: 16, wantErr: true, stored: 4},
	}
	for _, s := range steps {
		_, err := votelog.EnsureStream(ctx, js, votelog.StreamConfig{Shards: s.shards})
		var changed *votelog.ShardsChangedError
		switch {
		case s.wantErr && !errors.As(err, &changed):
			t.Fatalf("%s: err %v, want a ShardsChangedError", s.name, err)
		case s.wantErr && (changed.Stored != s.stored || changed.Configured != s.shards ||
			!strings.Contains(err.Error(), "--shards 4") || !strings.Contains(err.Error(), "--shards "+strconv.Itoa(s.shards))):
			t.Fatalf("%s: %v, want it to name --shards %d and --shards %d", s.name, err, s.stored, s.shards)
		case !s.wantErr && err != nil:
			t.Fatalf("%s: %v", s.name, err)
		}
		if n, err := votelog.StoredShards(ctx, js); err != nil || n != s.stored {
			t.Fatalf("%s: the log records %d shards (%v), want %d", s.name, n, err, s.stored)
		}
	}
}

// TestEnsureStreamShardsNewLog: a new log records the count it is created with.
func TestEnsureStreamShardsNewLog(t *testing.T) {
	ctx := context.Background()
	l := testsvc.StartLog(t)
	if err := l.JS.DeleteStream(ctx, votelog.StreamName); err != nil {
		t.Fatal(err)
	}
	if _, err := votelog.EnsureStream(ctx, l.JS, votelog.StreamConfig{Shards: 8}); err != nil {
		t.Fatal(err)
	}
	s, err := l.JS.Stream(ctx, votelog.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config.Metadata[votelog.ShardsKey]; got != "8" {
		t.Fatalf("metadata %v, want %s=8", s.CachedInfo().Config.Metadata, votelog.ShardsKey)
	}
	_, err = votelog.EnsureStream(ctx, l.JS, votelog.StreamConfig{Shards: 4})
	if changed := (*votelog.ShardsChangedError)(nil); !errors.As(err, &changed) || changed.Stored != 8 {
		t.Fatalf("err %v, want the log's 8 shards named", err)
	}
}
