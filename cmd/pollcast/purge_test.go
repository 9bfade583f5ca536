package main

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pollcast/pollcast/analytics"
	"github.com/pollcast/pollcast/internal/testsvc"
	"github.com/pollcast/pollcast/sdk"
	"github.com/pollcast/pollcast/votelog"
)

// TestPurge: single process, memory tally and registry, SQLite analytics.
func TestPurge(t *testing.T) {
	a := startApp(t)
	nc, err := a.emb.Connect("purge-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	testPurge(t, a, a, nc)
}

// TestPurgeDistributed: the web node purges through the shared stores
// (Redis tally and registry, ClickHouse analytics, an external NATS) while
// another node runs the tally and the analytics sink.
func TestPurgeDistributed(t *testing.T) {
	natsURL := testsvc.StartNATSServer(t)
	redisSrv := testsvc.StartRedis(t)
	chDSN := testsvc.ClickHouse(t)
	node := func(roles string) *app {
		return startApp(t, func(c *Config) {
			c.NATS, c.Redis, c.ClickHouse = natsURL, []string{"redis://" + redisSrv.Addr}, chDSN
			if err := c.parseRoles(roles); err != nil {
				t.Fatal(err)
			}
		})
	}
	back := node("tally,analytics")
	web := node("ingest,realtime,web")
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	testPurge(t, web, back, nc)
}

// testPurge checks DELETE /v1/polls/{id}?purge=true on web, whose votes
// back's analytics sink stores (web itself in one process): the purged
// poll's votes leave the log, its counters, its voters and its analytics
// rows; another poll's stay; the answer comes once all of it is done; a
// purge is idempotent, needs the owner's key, and works on a poll deleted
// before.
func testPurge(t *testing.T, web, back *app, nc *nats.Conn) {
	ctx := context.Background()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	newPoll := func() string {
		t.Helper()
		return web.createPoll(map[string]any{"dedupe": "device"})["id"].(string)
	}
	vote := func(id, voter string) int {
		t.Helper()
		return web.do("POST", "/v1/polls/"+id+"/votes", fmt.Sprintf(`{"options":["a"],"voter":%q}`, voter)).Status
	}
	logged := func(id string) int {
		t.Helper()
		n := 0
		if err := votelog.EachOfPoll(ctx, js, web.cfg.Shards, id, func([]byte) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	rows := func(id string) int {
		t.Helper()
		n := 0
		if err := back.astore.Export(ctx, id, func(*analytics.Vote) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	voted := func(id, voter string) bool {
		t.Helper()
		p, ok := web.catalog.PollOrDeleted(id)
		if !ok {
			t.Fatalf("no poll %s in the catalog", id)
		}
		return web.ingest.HasVoted(ctx, p, voter, netip.Addr{})
	}
	const n = 20
	gone, kept, deletedFirst := newPoll(), newPoll(), newPoll()
	for _, id := range []string{gone, kept, deletedFirst} {
		for i := range n {
			if s := vote(id, fmt.Sprintf("v%d", i)); s != http.StatusAccepted {
				t.Fatalf("vote: %d", s)
			}
		}
	}
	batch := []map[string]any{} // a pack in one log message
	for i := range 5 {
		batch = append(batch, map[string]any{"poll_id": gone, "options": []string{"b"}, "voter": fmt.Sprintf("batch%d", i)})
	}
	if r := web.admin("POST", "/v1/votes/batch", map[string]any{"votes": batch}); r.Status != http.StatusOK {
		t.Fatalf("batch: %d %s", r.Status, r.Body)
	}
	for _, id := range []string{gone, kept, deletedFirst} {
		want := n
		if id == gone {
			want += 5
		}
		eventually(t, 30*time.Second, "counted and in analytics", func() bool {
			return web.total(id) == int64(want) && rows(id) == want
		})
	}

	other := web.admin("POST", "/v1/keys", map[string]any{"name": "o", "role": "owner"}).JSON()["key"].(string)
	for _, tc := range []struct {
		name   string
		path   string
		key    string
		status int
		code   string
	}{
		{"no key", "/v1/polls/" + gone + "?purge=true", "", 401, "unauthorized"},
		{"not the owner", "/v1/polls/" + gone + "?purge=true", other, 403, "forbidden"},
		{"unknown poll", "/v1/polls/nopenopenope?purge=true", testAdminKey, 404, "not_found"},
		{"bad purge value", "/v1/polls/" + gone + "?purge=yes", testAdminKey, 422, "invalid"},
	} {
		var r reply
		if tc.key == "" {
			r = web.do("DELETE", tc.path, nil)
		} else {
			r = web.do("DELETE", tc.path, nil, "Authorization", "Bearer "+tc.key)
		}
		if r.Status != tc.status || r.Code() != tc.code {
			t.Errorf("%s: %d %s, want %d %s", tc.name, r.Status, r.Body, tc.status, tc.code)
		}
	}
	if logged(gone) == 0 || web.total(gone) == 0 || !voted(gone, "v1") {
		t.Fatal("a refused purge erased something")
	}

	// Soft-deleted first: the analytics rows stay until the purge.
	if r := web.admin("DELETE", "/v1/polls/"+deletedFirst, nil); r.Status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	if rows(deletedFirst) != n || logged(deletedFirst) != n {
		t.Fatal("a delete without purge erased the log or analytics")
	}

	for _, id := range []string{gone, deletedFirst} {
		for attempt := range 2 { // the second purge finds nothing left and answers the same
			start := time.Now()
			if r := web.admin("DELETE", "/v1/polls/"+id+"?purge=true", nil); r.Status != http.StatusNoContent {
				t.Fatalf("purge %d: %d %s", attempt, r.Status, r.Body)
			}
			t.Logf("purge %d took %v", attempt, time.Since(start).Round(time.Millisecond))
			// All of it is gone when the answer comes: no waiting here.
			if got := logged(id); got != 0 {
				t.Fatalf("purge %d: %d messages of the poll in the log", attempt, got)
			}
			if got := rows(id); got != 0 {
				t.Fatalf("purge %d: %d analytics rows of the poll", attempt, got)
			}
			for _, a := range []*app{web, back} {
				if c, err := a.store.Counts(ctx, id); err != nil || c.Total != 0 || c.Voters != 0 || len(c.Options) != 0 {
					t.Fatalf("purge %d: counts %+v, %v", attempt, c, err)
				}
			}
			for _, voter := range []string{"v0", "v1", "batch0"} {
				if voted(id, voter) {
					t.Fatalf("purge %d: the registry still knows %s voted", attempt, voter)
				}
			}
			if r := web.admin("GET", "/v1/polls/"+id+"/results", nil); r.Status != http.StatusNotFound {
				t.Fatalf("results of a purged poll: %d %s", r.Status, r.Body)
			}
			if got := len(csvRows(t, web, id)); got != 1 {
				t.Fatalf("the export of a purged poll has %d lines, want the header alone", got)
			}
		}
	}

	// The other poll is untouched, and the same voter votes in a new poll.
	if logged(kept) != n || rows(kept) != n || web.total(kept) != n || !voted(kept, "v1") {
		t.Fatalf("the other poll changed: log %d, rows %d, total %d", logged(kept), rows(kept), web.total(kept))
	}
	if s := vote(kept, "v1"); s != http.StatusConflict {
		t.Fatalf("second vote in the other poll: %d", s)
	}
	fresh := newPoll()
	if s := vote(fresh, "v1"); s != http.StatusAccepted {
		t.Fatalf("the purged poll's voter in a new poll: %d", s)
	}
	// Later votes are counted and stored as ever, and nothing of the purged
	// polls comes back with them.
	eventually(t, 30*time.Second, "the new poll's vote counted and stored", func() bool {
		return web.total(fresh) == 1 && rows(fresh) == 1
	})
	for _, id := range []string{gone, deletedFirst} {
		if rows(id) != 0 || logged(id) != 0 {
			t.Fatalf("the purged poll %s came back", id)
		}
	}
}

// TestPurgeFromSDKAndCLI: the SDK's DeletePoll with sdk.Purge and the
// CLI's `polls delete ID --purge` erase a poll, votes and analytics rows,
// and say so; without the option they only delete it.
func TestPurgeFromSDKAndCLI(t *testing.T) {
	a := startApp(t)
	ctx := testCtx(t, time.Minute)
	nc, err := a.emb.Connect("purge-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	erased := func(id string) bool {
		t.Helper()
		n := 0
		if err := votelog.EachOfPoll(ctx, js, a.cfg.Shards, id, func([]byte) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		if err := a.astore.Export(ctx, id, func(*analytics.Vote) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		return n == 0
	}
	withVote := func() string {
		t.Helper()
		id := a.createPoll(nil)["id"].(string)
		if r := a.do("POST", "/v1/polls/"+id+"/votes", `{"options":["a"],"voter":"x"}`); r.Status != http.StatusAccepted {
			t.Fatalf("vote: %d %s", r.Status, r.Body)
		}
		eventually(t, 10*time.Second, "the vote in analytics", func() bool { return len(csvRows(t, a, id)) == 2 })
		return id
	}
	admin := sdkClient(t, a, testAdminKey)

	id := withVote()
	if err := admin.DeletePoll(ctx, id); err != nil || erased(id) {
		t.Fatalf("DeletePoll without Purge: %v, erased %v", err, erased(id))
	}
	if err := admin.DeletePoll(ctx, id, sdk.Purge()); err != nil || !erased(id) {
		t.Fatalf("DeletePoll with Purge of a deleted poll: %v, erased %v", err, erased(id))
	}
	err = admin.DeletePoll(ctx, "nopenopenope", sdk.Purge())
	wantAPIError(t, "purge of an unknown poll", err, http.StatusNotFound, sdk.CodeNotFound)

	id = withVote()
	if out := a.cliOK("polls", "delete", id, "--purge"); !strings.Contains(out, "erased poll "+id) || !erased(id) {
		t.Fatalf("polls delete --purge: %q, erased %v", out, erased(id))
	}
	id = withVote()
	if out := decodeJSONOut(t, a.cliOK("polls", "delete", "--purge", "--json", id)); out["purged"] != true || out["id"] != id || !erased(id) {
		t.Fatalf("polls delete --purge --json: %v, erased %v", out, erased(id))
	}
	id = withVote()
	if out := a.cliOK("polls", "delete", id); !strings.Contains(out, "deleted poll "+id) || erased(id) {
		t.Fatalf("polls delete: %q, erased %v", out, erased(id))
	}
}

// TestPurgeWaitsForAnalytics: with no analytics sink storing the log, a
// purge cannot know that no row of the poll is on its way: it answers 503
// overloaded with Retry-After once its time is up, and the poll stays
// deleted. The same purge asked again once a sink runs erases everything.
func TestPurgeWaitsForAnalytics(t *testing.T) {
	natsURL := testsvc.StartNATSServer(t)
	redisSrv := testsvc.StartRedis(t)
	chDSN := testsvc.ClickHouse(t)
	node := func(roles string) *app {
		return startApp(t, func(c *Config) {
			c.NATS, c.Redis, c.ClickHouse = natsURL, []string{"redis://" + redisSrv.Addr}, chDSN
			c.PurgeTimeout = 3 * time.Second // past the sink's flush interval (1s), on a busy machine too
			if err := c.parseRoles(roles); err != nil {
				t.Fatal(err)
			}
		})
	}
	web := node("ingest,tally,realtime,web")
	id := web.createPoll(nil)["id"].(string)
	if r := web.do("POST", "/v1/polls/"+id+"/votes", `{"options":["a"],"voter":"x"}`); r.Status != http.StatusAccepted {
		t.Fatalf("vote: %d %s", r.Status, r.Body)
	}
	r := web.admin("DELETE", "/v1/polls/"+id+"?purge=true", nil)
	if r.Status != http.StatusServiceUnavailable || r.Code() != "overloaded" || r.Header.Get("Retry-After") == "" {
		t.Fatalf("purge without a sink: %d %s (Retry-After %q)", r.Status, r.Body, r.Header.Get("Retry-After"))
	}
	if r := web.do("GET", "/v1/polls/"+id, nil); r.Status != http.StatusNotFound {
		t.Fatalf("the poll of a failed purge: %d", r.Status)
	}

	node("analytics")
	eventually(t, 30*time.Second, "a purge with a sink", func() bool {
		return web.admin("DELETE", "/v1/polls/"+id+"?purge=true", nil).Status == http.StatusNoContent
	})
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := votelog.EachOfPoll(context.Background(), js, web.cfg.Shards, id, func([]byte) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := web.astore.Export(context.Background(), id, func(*analytics.Vote) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d messages and rows of the poll left", n)
	}
}
