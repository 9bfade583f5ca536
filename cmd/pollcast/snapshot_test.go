package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pollcast/pollcast/internal/snapshot"
	"github.com/pollcast/pollcast/tally"
)

// snapshotConfig is a memory-mode node on dir that saves snapshots only
// when told (and at shutdown).
func snapshotConfig(dir string) Config {
	return Config{
		Addr: "127.0.0.1:0", Data: dir, Shards: 4, Region: "test", AdminKey: testAdminKey,
		ShutdownTimeout: 5 * time.Second, LogLevel: "warn", LogFormat: "text", SnapshotInterval: time.Hour,
	}
}

// voteN casts n votes of distinct voters named prefix0.., each answered 202.
func (a *app) voteN(id, prefix string, n int) {
	a.t.Helper()
	for i := range n {
		r := a.do("POST", "/v1/polls/"+id+"/votes", fmt.Sprintf(`{"options":["%c"],"voter":"%s%d"}`, 'a'+i%3, prefix, i))
		if r.Status != 202 {
			a.t.Fatalf("vote %s%d: %d %s", prefix, i, r.Status, r.Body)
		}
	}
}

// saveSnapshot saves a snapshot now and returns its path.
func (a *app) saveSnapshot() string {
	a.t.Helper()
	if err := a.snaps.Save(context.Background()); err != nil {
		a.t.Fatal(err)
	}
	paths, err := a.snaps.Dir().List()
	if err != nil || len(paths) == 0 {
		a.t.Fatalf("no snapshot after a save: %v", err)
	}
	return paths[0]
}

// checkCounts checks that the poll counts exactly total votes of total
// voters, and that voters (who voted) are refused a second vote.
func (a *app) checkCounts(id string, total int64, voters ...string) {
	a.t.Helper()
	res := a.results(id)
	if got, v := int64(res["total"].(float64)), int64(res["voters"].(float64)); got != total || v != total {
		a.t.Fatalf("results count %d votes of %d voters, want %d of each", got, v, total)
	}
	for _, voter := range voters {
		if r := a.do("POST", "/v1/polls/"+id+"/votes", fmt.Sprintf(`{"options":["b"],"voter":%q}`, voter)); r.Code() != "already_voted" {
			a.t.Fatalf("voter %s voting again after the restart: %d %s", voter, r.Status, r.Body)
		}
	}
}

// TestSnapshotRestartCountsExactly: a restart loads the snapshot and reads
// only the log after it; the results count exactly the votes answered 202
// before and after the snapshot, and one-vote-per-voter holds for voters
// of both.
func TestSnapshotRestartCountsExactly(t *testing.T) {
	dir := t.TempDir()
	a := startAppWith(t, snapshotConfig(dir))
	id := a.createPoll(map[string]any{"dedupe": "device"})["id"].(string)
	a.voteN(id, "before", 30)
	mid := a.saveSnapshot()
	a.voteN(id, "after", 20)
	if err := a.Close(); err != nil { // saves one more snapshot: drop it, so that the log after mid is read
		t.Fatal(err)
	}
	paths, _ := a.snaps.Dir().List()
	for _, p := range paths {
		if p != mid {
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
		}
	}

	b := startAppWith(t, snapshotConfig(dir))
	if b.snapLoaded != mid {
		t.Fatalf("loaded snapshot %q, want %q", b.snapLoaded, mid)
	}
	b.checkCounts(id, 50, "before0", "before29", "after0", "after19")
	b.voteN(id, "new", 1)
	eventually(t, 10*time.Second, "the new vote counted", func() bool { return b.total(id) == 51 })
	b.checkCounts(id, 51)
}

// TestSnapshotRestartKeepsIdempotencyKeys: a keyed vote saved in a
// snapshot, and one in the log after it, are still known after a restart
// from the snapshot: a retry with the same key gets the same vote_id and
// is counted once.
func TestSnapshotRestartKeepsIdempotencyKeys(t *testing.T) {
	dir := t.TempDir()
	a := startAppWith(t, snapshotConfig(dir))
	id := a.createPoll(map[string]any{"dedupe": "none"})["id"].(string)
	vote := func(a *app, key string) any {
		t.Helper()
		r := a.do("POST", "/v1/polls/"+id+"/votes", map[string]any{"options": []string{"a"}, "idempotency_key": key})
		if r.Status != 202 {
			t.Fatalf("vote with key %s: %d %s", key, r.Status, r.Body)
		}
		return r.JSON()["vote_id"]
	}
	before := vote(a, "before")
	mid := a.saveSnapshot()
	after := vote(a, "after")
	if err := a.Close(); err != nil { // saves one more snapshot: drop it, so that mid is loaded
		t.Fatal(err)
	}
	paths, _ := a.snaps.Dir().List()
	for _, p := range paths {
		if p != mid {
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
		}
	}

	b := startAppWith(t, snapshotConfig(dir))
	if b.snapLoaded != mid {
		t.Fatalf("loaded snapshot %q, want %q", b.snapLoaded, mid)
	}
	b.shortenLogWindow(time.Second) // past it, only pollcast's keys recognise a retry
	for key, want := range map[string]any{"before": before, "after": after} {
		if got := vote(b, key); got != want {
			t.Fatalf("retry of %s after the restart: vote_id %v, want %v", key, got, want)
		}
	}
	// A keyless vote after the retries, of another option: once it is
	// counted, so would they be (one poll is one shard, read in order).
	if r := b.do("POST", "/v1/polls/"+id+"/votes", map[string]any{"options": []string{"b"}}); r.Status != 202 {
		t.Fatalf("vote: %d %s", r.Status, r.Body)
	}
	eventually(t, 10*time.Second, "the last vote counted", func() bool { return optionVotes(b.results(id), "b") == 1 })
	if got := b.total(id); got != 3 {
		t.Fatalf("the poll counts %d votes, want 3: retries after the restart counted again", got)
	}
}

// TestSnapshotWithoutKeysIsSkipped: a snapshot without the idempotency
// keys is not loaded — the keys of the votes it covers would be lost — and
// the whole log is read instead: the count is exact and a retry is still
// the same vote.
func TestSnapshotWithoutKeysIsSkipped(t *testing.T) {
	dir := t.TempDir()
	a := startAppWith(t, snapshotConfig(dir))
	id := a.createPoll(map[string]any{"dedupe": "device"})["id"].(string)
	a.voteN(id, "v", 5)
	keyed := a.do("POST", "/v1/polls/"+id+"/votes", map[string]any{"options": []string{"a"}, "voter": "k", "idempotency_key": "k1"})
	if keyed.Status != 202 {
		t.Fatalf("keyed vote: %d %s", keyed.Status, keyed.Body)
	}
	ctx := context.Background()
	voters, err := a.ingest.SnapshotVoters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the votes counted", func() bool { return a.total(id) == 6 })
	counters := a.store.(*tally.MemoryStore).Snapshot()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	paths, _ := a.snaps.Dir().List()
	for _, p := range paths {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	without, err := a.snaps.Dir().Save(voters.Covered()+1, []snapshot.Section{
		{Kind: snapshot.KindTally, Write: counters.Write},
		{Kind: snapshot.KindVoters, Write: func(w io.Writer) error { return voters.Write(ctx, w) }},
	})
	if err != nil {
		t.Fatal(err)
	}

	b := startAppWith(t, snapshotConfig(dir))
	if b.snapLoaded != "" {
		t.Fatalf("loaded %q, a snapshot without the keys (%q)", b.snapLoaded, without)
	}
	b.shortenLogWindow(time.Second)
	again := b.do("POST", "/v1/polls/"+id+"/votes", map[string]any{"options": []string{"a"}, "voter": "k", "idempotency_key": "k1"})
	if again.Status != 202 || again.JSON()["vote_id"] != keyed.JSON()["vote_id"] {
		t.Fatalf("retry after the restart: %d %s, want 202 with the vote_id of %s", again.Status, again.Body, keyed.Body)
	}
	b.checkCounts(id, 6, "v0", "v4")
}

// shortenLogWindow shortens the vote log's duplicate window to w and waits
// until the message IDs of the votes so far are past it.
func (a *app) shortenLogWindow(w time.Duration) {
	a.t.Helper()
	ctx := context.Background()
	js, err := jetstream.New(a.ncs[0])
	if err != nil {
		a.t.Fatal(err)
	}
	s, err := js.Stream(ctx, "VOTES")
	if err != nil {
		a.t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	cfg.Duplicates = w
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		a.t.Fatal(err)
	}
	start := time.Now()
	eventually(a.t, 2*w+time.Second, "the log's duplicate window to pass", func() bool { return time.Since(start) > w+w/2 })
}

// TestSnapshotDamagedIsSkipped: a truncated snapshot and one with a
// flipped byte are detected and skipped for an older one, or for the whole
// log; the count is exact either way.
func TestSnapshotDamagedIsSkipped(t *testing.T) {
	dir := t.TempDir()
	a := startAppWith(t, snapshotConfig(dir))
	id := a.createPoll(map[string]any{"dedupe": "device"})["id"].(string)
	a.voteN(id, "one", 10)
	oldest := a.saveSnapshot()
	a.voteN(id, "two", 10)
	middle := a.saveSnapshot()
	a.voteN(id, "three", 10)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	paths, _ := a.snaps.Dir().List()
	if len(paths) != 3 || paths[1] != middle || paths[2] != oldest {
		t.Fatalf("snapshots %v", paths)
	}
	newest := paths[0]
	truncate := func(path string) {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(path, st.Size()/2); err != nil {
			t.Fatal(err)
		}
	}
	flip := func(path string) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/3] ^= 0x01
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name   string
		damage func(newest, middle, oldest string)
		want   string // the snapshot loaded; "" for none
	}{
		{"newest truncated", func(n, _, _ string) { truncate(n) }, middle},
		{"newest with a flipped byte", func(n, _, _ string) { flip(n) }, middle},
		{"two damaged", func(n, m, _ string) { truncate(n); flip(m) }, oldest},
		{"all damaged", func(n, m, o string) { flip(n); truncate(m); flip(o) }, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			copyDir := t.TempDir()
			if err := os.CopyFS(copyDir, os.DirFS(dir)); err != nil {
				t.Fatal(err)
			}
			in := func(p string) string { return filepath.Join(copyDir, "snapshots", filepath.Base(p)) }
			tc.damage(in(newest), in(middle), in(oldest))
			b := startAppWith(t, snapshotConfig(copyDir))
			want := tc.want
			if want != "" {
				want = in(want)
			}
			if b.snapLoaded != want {
				t.Fatalf("loaded %q, want %q", b.snapLoaded, want)
			}
			b.checkCounts(id, 30, "one0", "two9", "three9")
		})
	}
}

// streamState returns the vote log's first sequence and message count.
func (a *app) streamState() (first, msgs uint64) {
	a.t.Helper()
	js, err := jetstream.New(a.ncs[0])
	if err != nil {
		a.t.Fatal(err)
	}
	s, err := js.Stream(context.Background(), "VOTES")
	if err != nil {
		a.t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		a.t.Fatal(err)
	}
	return info.State.FirstSeq, info.State.Msgs
}

// TestRetentionKeepsCounts: with a retention shorter than the votes' age,
// the old votes leave the log once snapshots and analytics saved them;
// results, voters and analytics are unchanged, before and after a
// restart. Without the snapshots, the node refuses to start rather than
// count what is left.
func TestRetentionKeepsCounts(t *testing.T) {
	dir := t.TempDir()
	cfg := snapshotConfig(dir)
	cfg.SnapshotInterval, cfg.LogRetention, cfg.RetentionInterval = 50*time.Millisecond, 100*time.Millisecond, 50*time.Millisecond
	a := startAppWith(t, cfg)
	id := a.createPoll(map[string]any{"dedupe": "device"})["id"].(string)
	other := a.createPoll(map[string]any{"dedupe": "none"})["id"].(string)
	a.voteN(id, "old", 40)
	a.voteN(other, "x", 7)
	eventually(t, 20*time.Second, "the old votes to leave the log", func() bool {
		first, msgs := a.streamState()
		return msgs == 0 && first > 47
	})
	check := func(a *app) {
		t.Helper()
		a.checkCounts(id, 40, "old0", "old39")
		if got := a.total(other); got != 7 {
			t.Fatalf("the other poll counts %d, want 7", got)
		}
		eventually(t, 10*time.Second, "analytics rows", func() bool { return len(csvRows(t, a, id)) == 41 })
	}
	check(a)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}

	b := startAppWith(t, cfg)
	if b.snapLoaded == "" {
		t.Fatal("restarted without a snapshot")
	}
	check(b)
	b.voteN(id, "new", 2)
	eventually(t, 10*time.Second, "the new votes counted", func() bool { return b.total(id) == 42 })
	b.checkCounts(id, 42)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	if err := os.RemoveAll(filepath.Join(dir, "snapshots")); err != nil {
		t.Fatal(err)
	}
	m := NewMain(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), io.Discard)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := m.Run(ctx)
	m.Close()
	if !errors.Is(err, tally.ErrLogTrimmed) {
		t.Fatalf("start without snapshots on a trimmed log: %v, want %v", err, tally.ErrLogTrimmed)
	}
}
