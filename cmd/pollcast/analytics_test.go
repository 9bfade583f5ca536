package main

import (
	"encoding/csv"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pollcast/pollcast/internal/testsvc"
)

// uaOf are User-Agents of each device class.
var uaOf = map[string]string{
	"desktop": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36",
	"mobile":  "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
	"tablet":  "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
}

// ipOf are client addresses of known countries.
var ipOf = map[string]string{"US": "8.8.8.8", "DE": "81.169.145.105", "JP": "133.242.0.1"}

// analyticsVotes casts n votes with a known country, device and referrer
// each (through a trusted proxy) and returns what each breakdown should say.
func analyticsVotes(t *testing.T, a *app, id string, n int) map[string]map[string]int64 {
	t.Helper()
	countries := []string{"US", "DE", "JP"}
	devices := []string{"desktop", "mobile", "tablet"}
	referrers := []string{"news.example.com", "blog.example.org"}
	want := map[string]map[string]int64{"country": {}, "device": {}, "referrer": {}, "region": {}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			c, d, r := countries[i%3], devices[(i/3)%3], referrers[i%2]
			body := fmt.Sprintf(`{"options":["%c"],"voter":"v%d","referrer":"https://%s/story"}`, 'a'+i%2, i, r)
			req, _ := http.NewRequest("POST", a.url+"/v1/polls/"+id+"/votes", strings.NewReader(body))
			req.Header.Set("X-Forwarded-For", ipOf[c])
			req.Header.Set("User-Agent", uaOf[d])
			resp, err := a.client.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 202 {
				t.Errorf("vote %d: %d", i, resp.StatusCode)
				return
			}
			mu.Lock()
			want["country"][c]++
			want["device"][d]++
			want["referrer"][r]++
			want["region"]["test"]++
			mu.Unlock()
		})
	}
	wg.Wait()
	return want
}

// csvRows downloads a poll's CSV export and returns its rows (header first).
func csvRows(t *testing.T, a *app, id string) [][]string {
	t.Helper()
	r := a.admin("GET", "/v1/polls/"+id+"/votes.csv", nil)
	if r.Status != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/csv") {
		t.Fatalf("csv: %d %s", r.Status, r.Body)
	}
	rows, err := csv.NewReader(strings.NewReader(string(r.Body))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func testAnalyticsEndToEnd(t *testing.T, a *app) {
	id := a.createPoll(map[string]any{"dedupe": "device"})["id"].(string)
	const n = 300
	want := analyticsVotes(t, a, id, n)
	eventually(t, 30*time.Second, "analytics caught up", func() bool { return len(csvRows(t, a, id)) == n+1 })
	if got := a.total(id); got != n {
		t.Fatalf("tally total %d, want %d", got, n)
	}
	rows := csvRows(t, a, id)
	if strings.Join(rows[0], ",") != "vote_id,time,options,region,country,device,referrer" {
		t.Fatalf("csv header %v", rows[0])
	}
	ids := map[string]bool{}
	for _, row := range rows[1:] {
		ids[row[0]] = true
		if _, err := time.Parse(time.RFC3339, row[1]); err != nil || row[3] != "test" {
			t.Fatalf("csv row %v", row)
		}
	}
	if len(ids) != n {
		t.Fatalf("%d distinct vote ids in the csv, want %d", len(ids), n)
	}

	for by, counts := range want {
		r := a.admin("GET", "/v1/polls/"+id+"/analytics/breakdown?by="+by, nil)
		if r.Status != 200 {
			t.Fatalf("breakdown %s: %d %s", by, r.Status, r.Body)
		}
		var total int64
		got := map[string]int64{}
		for _, row := range r.JSON()["rows"].([]any) {
			m := row.(map[string]any)
			got[m["key"].(string)] = int64(m["votes"].(float64))
			total += int64(m["votes"].(float64))
			var byOpt int64
			for _, v := range m["by_option"].(map[string]any) {
				byOpt += int64(v.(float64))
			}
			if byOpt != int64(m["votes"].(float64)) {
				t.Fatalf("breakdown %s row %v: by_option does not add up", by, m)
			}
		}
		if total != n || fmt.Sprint(got) != fmt.Sprint(counts) {
			t.Fatalf("breakdown by %s = %v, want %v", by, got, counts)
		}
	}
	for _, step := range []string{"1m", "5m", "1h", "1d"} {
		r := a.admin("GET", "/v1/polls/"+id+"/analytics/timeline?step="+step, nil)
		if r.Status != 200 {
			t.Fatalf("timeline %s: %d %s", step, r.Status, r.Body)
		}
		var total int64
		for _, p := range r.JSON()["points"].([]any) {
			total += int64(p.(map[string]any)["votes"].(float64))
		}
		if total != n {
			t.Fatalf("timeline %s adds up to %d, want %d", step, total, n)
		}
	}
}

func TestAnalyticsEndToEndSQLite(t *testing.T) {
	a := startApp(t, func(c *Config) { c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")} })
	testAnalyticsEndToEnd(t, a)
}

func TestAnalyticsEndToEndClickHouse(t *testing.T) {
	dsn := testsvc.ClickHouse(t)
	a := startApp(t, func(c *Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
		c.ClickHouse = dsn
	})
	testAnalyticsEndToEnd(t, a)
}

func TestAnalyticsErrors(t *testing.T) {
	a := startApp(t)
	id := a.createPoll(nil)["id"].(string)
	other := a.admin("POST", "/v1/keys", map[string]any{"name": "o", "role": "owner"}).JSON()["key"].(string)
	tests := []struct {
		path, key string
		status    int
		code      string
	}{
		{"/analytics/timeline", "", 401, "unauthorized"},
		{"/analytics/timeline", other, 403, "forbidden"},
		{"/analytics/timeline?step=2m", testAdminKey, 422, "invalid"},
		{"/analytics/timeline?from=yesterday", testAdminKey, 422, "invalid"},
		{"/analytics/timeline?from=2020-01-01T00:00:00Z&step=1m", testAdminKey, 422, "invalid"},
		{"/analytics/timeline?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", testAdminKey, 422, "invalid"},
		{"/analytics/breakdown", testAdminKey, 422, "invalid"},
		{"/analytics/breakdown?by=ip", testAdminKey, 422, "invalid"},
		{"/votes.csv", other, 403, "forbidden"},
	}
	for _, tt := range tests {
		var r reply
		if tt.key == "" {
			r = a.do("GET", "/v1/polls/"+id+tt.path, nil)
		} else {
			r = a.do("GET", "/v1/polls/"+id+tt.path, nil, "Authorization", "Bearer "+tt.key)
		}
		if r.Status != tt.status || r.Code() != tt.code {
			t.Errorf("%s: %d %s, want %d %s", tt.path, r.Status, r.Body, tt.status, tt.code)
		}
	}
	if r := a.admin("GET", "/v1/polls/nopenopenope/votes.csv", nil); r.Status != 404 {
		t.Errorf("csv of unknown poll: %d", r.Status)
	}
	// A deleted poll's votes stay exportable by its owner.
	if r := a.do("POST", "/v1/polls/"+id+"/votes", `{"options":["a"],"voter":"x"}`); r.Status != 202 {
		t.Fatal(r.Status)
	}
	eventually(t, 10*time.Second, "vote in analytics", func() bool { return len(csvRows(t, a, id)) == 2 })
	if r := a.admin("DELETE", "/v1/polls/"+id, nil); r.Status != 204 {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	if r := a.do("GET", "/v1/polls/"+id, nil); r.Status != 404 {
		t.Fatalf("deleted poll still public: %d", r.Status)
	}
	if rows := csvRows(t, a, id); len(rows) != 2 {
		t.Fatalf("deleted poll export has %d rows", len(rows))
	}
}

// TestClickHouseOutageCatchesUp: ClickHouse is stopped for 20 s while votes
// keep coming; ingest is not affected, readyz stays ready, and after it is
// back the analytics count equals the 202s exactly.
func TestClickHouseOutageCatchesUp(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 20 s")
	}
	ch := testsvc.StartClickHouse(t)
	a := startApp(t, func(c *Config) { c.ClickHouse = ch.DSN("outage") })
	id := a.createPoll(map[string]any{"dedupe": "none"})["id"].(string)
	var accepted atomic.Int64
	vote := func() {
		r := a.do("POST", "/v1/polls/"+id+"/votes", `{"options":["a"]}`)
		if r.Status != 202 {
			t.Fatalf("vote during outage: %d %s", r.Status, r.Body)
		}
		accepted.Add(1)
	}
	for range 100 {
		vote()
	}
	eventually(t, 10*time.Second, "first votes in clickhouse", func() bool { return len(csvRows(t, a, id)) == 101 })

	ch.Stop()
	down := time.Now()
	for time.Since(down) < 20*time.Second {
		vote()
		if accepted.Load()%100 == 0 {
			if r := a.do("GET", "/readyz", nil); r.Status != 200 {
				t.Fatalf("readyz during the analytics outage: %d %s", r.Status, r.Body)
			}
		}
		time.Sleep(10 * time.Millisecond) // pace the load: about 100 votes/s
	}
	if r := a.do("GET", "/metrics", nil); !strings.Contains(string(r.Body), "pollcast_analytics_store_failing 1") {
		t.Fatalf("metrics do not show the failing store")
	}
	if err := ch.Start(); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	eventually(t, 60*time.Second, "analytics caught up", func() bool {
		r := a.admin("GET", "/v1/polls/"+id+"/analytics/breakdown?by=region", nil)
		if r.Status != 200 {
			return false
		}
		rows := r.JSON()["rows"].([]any)
		return len(rows) == 1 && int64(rows[0].(map[string]any)["votes"].(float64)) == accepted.Load()
	})
	t.Logf("%d votes accepted (%d during a 20s ClickHouse outage); caught up %v after it came back",
		accepted.Load(), accepted.Load()-100, time.Since(back).Round(time.Millisecond))
	if got := a.total(id); got != accepted.Load() {
		t.Fatalf("tally %d, want %d", got, accepted.Load())
	}
	if rows := csvRows(t, a, id); len(rows)-1 != int(accepted.Load()) {
		t.Fatalf("csv %d rows, want %d", len(rows)-1, accepted.Load())
	}
}
