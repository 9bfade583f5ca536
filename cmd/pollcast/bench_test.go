package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// benchRun runs `pollcast bench args...` and returns its exit code, its
// standard output and its standard error.
func benchRun(t testing.TB, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	getenv := func(string) string { return "" }
	code := run(append([]string{"bench"}, args...), getenv, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// benchJSON runs a scenario with --json and decodes its summary.
func benchJSON(t testing.TB, args ...string) (int, *benchSummary) {
	t.Helper()
	code, out, errOut := benchRun(t, append(args, "--json")...)
	t.Logf("stderr:\n%s", errOut)
	var s benchSummary
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("summary: %v\n%s", err, out)
	}
	return code, &s
}

// checkExact asserts a passing run on a fresh poll, counted as the
// server's own results say.
func checkExact(t *testing.T, a *app, code int, s *benchSummary) {
	t.Helper()
	if code != 0 || !s.Passed {
		t.Fatalf("exit %d, passed %v: %+v", code, s.Passed, s.Check)
	}
	if s.OK == 0 || s.Check.Accepted != s.OK || s.Check.Counted != s.Check.Accepted || !s.Check.Settled {
		t.Fatalf("exactness: ok %d, check %+v", s.OK, s.Check)
	}
	if s.Errors != 0 || s.Sent != s.OK {
		t.Errorf("sent %d, ok %d, errors %d %v", s.Sent, s.OK, s.Errors, s.ErrorCodes)
	}
	if got := a.total(s.PollID); got != s.OK {
		t.Errorf("the poll counts %d votes, the bench says %d were accepted", got, s.OK)
	}
}

// checkLatency asserts percentiles that are positive and ordered.
func checkLatency(t *testing.T, l latencySummary, of string) {
	t.Helper()
	if l.Of != of || l.Count == 0 {
		t.Fatalf("latency of %q with %d samples, want %q", l.Of, l.Count, of)
	}
	if !(0 < l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.Max) {
		t.Errorf("percentiles not positive and ordered: %+v", l)
	}
}

func benchArgs(a *app, scenario string, more ...string) []string {
	return append([]string{scenario, "--url", a.url, "--key", testAdminKey, "--duration", "1s"}, more...)
}

func TestBenchHTTP(t *testing.T) {
	a := startApp(t)
	code, s := benchJSON(t, benchArgs(a, "http", "--concurrency", "4")...)
	checkExact(t, a, code, s)
	checkLatency(t, s.Latency, "request")
	if !s.CreatedPoll || s.Scenario != "http" {
		t.Errorf("created %v, scenario %q", s.CreatedPoll, s.Scenario)
	}
}

func TestBenchHTTPRate(t *testing.T) {
	a := startApp(t)
	code, s := benchJSON(t, benchArgs(a, "http", "--concurrency", "4", "--rate", "200", "--duration", "1500ms")...)
	checkExact(t, a, code, s)
	if s.OK < 200 || s.OK > 320 {
		t.Errorf("%d votes in 1.5 s at 200 votes/s", s.OK)
	}
}

func TestBenchWS(t *testing.T) {
	a := startApp(t)
	code, s := benchJSON(t, benchArgs(a, "ws", "--concurrency", "3")...)
	checkExact(t, a, code, s)
	checkLatency(t, s.Latency, "request")
	if s.ConnectErrors != 0 {
		t.Errorf("connection errors: %d, %s", s.ConnectErrors, s.FirstConnectError)
	}
}

func TestBenchBatch(t *testing.T) {
	a := startApp(t)
	code, s := benchJSON(t, benchArgs(a, "batch", "--concurrency", "2", "--batch-size", "200")...)
	checkExact(t, a, code, s)
	checkLatency(t, s.Latency, "request")
	if s.OK%200 != 0 {
		t.Errorf("%d votes accepted: not whole batches of 200", s.OK)
	}
}

func TestBenchViewers(t *testing.T) {
	for _, live := range []string{"ws", "sse"} {
		t.Run(live, func(t *testing.T) {
			a := startApp(t)
			code, s := benchJSON(t, benchArgs(a, "viewers", "--viewers", "50", "--rate", "300", "--concurrency", "4", "--live", live)...)
			checkExact(t, a, code, s)
			checkLatency(t, s.Latency, "vote_to_viewer")
			v := s.Viewers
			if v == nil || v.Connected != 50 || v.Dropped != 0 || v.Failed != 0 || v.CaughtUp != 50 {
				t.Fatalf("viewers: %+v", v)
			}
			if want := 50 * s.OK; s.Latency.Count != want {
				t.Errorf("%d (viewer, vote) latencies, want %d", s.Latency.Count, want)
			}
		})
	}
}

// TestBenchExistingPoll votes on a poll that has votes already, with a
// pool of three voters on a poll that lets each vote once.
func TestBenchExistingPoll(t *testing.T) {
	a := startApp(t)
	id := a.createPoll(map[string]any{"dedupe": "device"})["id"].(string)
	for _, voter := range []string{"early-1", "early-2"} {
		if r := a.do("POST", "/v1/polls/"+id+"/votes", map[string]any{"options": []string{"b"}, "voter": voter}); r.Status != http.StatusAccepted {
			t.Fatalf("vote: %d %s", r.Status, r.Body)
		}
	}
	eventually(t, 10*time.Second, "the early votes counted", func() bool { return a.total(id) == 2 })
	code, s := benchJSON(t, "http", "--url", a.url, "--poll", id, "--voters", "3", "--concurrency", "2", "--duration", "1s")
	if code != 0 || !s.Passed || s.CreatedPoll {
		t.Fatalf("exit %d: %+v", code, s)
	}
	if s.OK != 3 || s.Check.Before != 2 || s.Check.After != 5 || s.Check.Counted != 3 {
		t.Errorf("ok %d, check %+v", s.OK, s.Check)
	}
	if s.ErrorCodes["already_voted"] != s.Errors || s.Errors == 0 {
		t.Errorf("errors %d: %v", s.Errors, s.ErrorCodes)
	}
}

func TestBenchUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no scenario", []string{"--key", "k"}, "usage: pollcast bench"},
		{"two scenarios", []string{"http", "ws", "--key", "k"}, "usage: pollcast bench"},
		{"unknown scenario", []string{"tcp", "--key", "k"}, `unknown scenario "tcp"`},
		{"unknown flag", []string{"http", "--nope"}, "flag provided but not defined: -nope"},
		{"bad duration", []string{"http", "--key", "k", "--duration", "-1s"}, "--duration must be positive"},
		{"bad rate", []string{"http", "--key", "k", "--rate", "-5"}, "--rate must be"},
		{"batch too big", []string{"batch", "--key", "k", "--batch-size", "1001"}, "--batch-size must be 1 to 1000"},
		{"batch without key", []string{"batch", "--poll", "p"}, "batch needs an owner or admin API key"},
		{"no poll no key", []string{"http"}, "give --poll ID, or an API key"},
		{"bad url", []string{"http", "--poll", "p", "--url", "ftp://x"}, `--url "ftp://x"`},
		{"bad live", []string{"viewers", "--poll", "p", "--live", "smoke"}, "--live must be ws or sse"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := benchRun(t, tt.args...)
			if code != 2 || out != "" || !strings.Contains(errOut, tt.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want 2 and %q", code, out, errOut, tt.want)
			}
		})
	}
	if code, _, errOut := benchRun(t, "-h"); code != 0 || !strings.Contains(errOut, "viewers") {
		t.Errorf("-h: exit %d, %q", code, errOut)
	}
}

// TestBenchHistogram checks quantiles against a known distribution: the
// durations 1 µs·1.0001^i spread over nine orders of magnitude, and a
// uniform one.
func TestBenchHistogram(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	uniform := make([]time.Duration, 200_000)
	for i := range uniform {
		uniform[i] = time.Millisecond + time.Duration(rng.Int64N(int64(99*time.Millisecond)))
	}
	wide := make([]time.Duration, 200_000)
	for i := range wide {
		wide[i] = time.Duration(float64(time.Microsecond) * math.Pow(1.0001, float64(i)))
	}
	for name, samples := range map[string][]time.Duration{"uniform": uniform, "wide": wide} {
		t.Run(name, func(t *testing.T) {
			h := newHistogram()
			for _, d := range samples {
				h.Record(d)
			}
			sorted := slices.Sorted(slices.Values(samples))
			for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 0.999, 1} {
				exact := sorted[int(math.Ceil(q*float64(len(sorted))))-1]
				got := h.Quantile(q)
				if rel := math.Abs(float64(got-exact)) / float64(exact); rel > 0.01 {
					t.Errorf("q%v = %v, exact %v (off by %.2f%%)", q, got, exact, rel*100)
				}
			}
			if h.Max() != sorted[len(sorted)-1] || h.Count() != int64(len(samples)) {
				t.Errorf("max %v count %d, want %v and %d", h.Max(), h.Count(), sorted[len(sorted)-1], len(samples))
			}
		})
	}
	t.Run("empty and zero", func(t *testing.T) {
		h := newHistogram()
		if h.Quantile(0.5) != 0 || h.Max() != 0 {
			t.Errorf("empty: %v %v", h.Quantile(0.5), h.Max())
		}
		h.Record(-time.Second)
		h.Record(0)
		h.Record(time.Second)
		if h.Quantile(0.5) != 0 || h.Quantile(1) != time.Second {
			t.Errorf("p50 %v p100 %v", h.Quantile(0.5), h.Quantile(1))
		}
	})
}

// TestBenchHistogramSince checks that RecordSince counts as Record would.
func TestBenchHistogramSince(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	ts := make([]int64, 50_000)
	for i := range ts {
		ts[i] = rng.Int64N(int64(2 * time.Second))
	}
	slices.Sort(ts)
	now := int64(time.Second) // later times clamp at zero
	bulk, one := newHistogram(), newHistogram()
	record := func(what string, ts []int64) {
		t.Helper()
		bulk.RecordSince(now, ts)
		for _, t0 := range ts {
			one.Record(time.Duration(now - t0))
		}
		for b := range histBuckets {
			if bulk.counts[b].Load() != one.counts[b].Load() {
				t.Fatalf("%s: bucket %d: %d by RecordSince, %d by Record", what, b, bulk.counts[b].Load(), one.counts[b].Load())
			}
		}
	}
	record("random", ts)
	// Durations on the edges of buckets.
	var edges []int64
	for _, d := range append([]int64{0, 1, histUnit - 1, histUnit, histUnit + 1}, bucketEnds[1:10]...) {
		edges = append(edges, now-d, now-d-1, now-d+1)
	}
	record("edges", slices.Compact(slices.Sorted(slices.Values(edges))))
	if bulk.Count() != one.Count() || bulk.Max() != one.Max() {
		t.Errorf("count %d max %v, want %d %v", bulk.Count(), bulk.Max(), one.Count(), one.Max())
	}
}

// TestBenchSources runs against a baseline-like server that notes the
// address each connection comes from.
func TestBenchSources(t *testing.T) {
	var (
		mu    sync.Mutex
		ips   = map[string]int{}
		votes atomic.Int64
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			fmt.Fprintf(w, `{"total":%d}`, votes.Load())
			return
		}
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		mu.Lock()
		ips[host]++
		mu.Unlock()
		_, _ = io.Copy(io.Discard, r.Body)
		votes.Add(1)
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprint(w, `{"vote_id":"v","poll_id":"x","status":"accepted"}`)
	}))
	defer srv.Close()
	code, s := benchJSON(t, "http", "--url", srv.URL, "--poll", "x", "--sources", "4", "--concurrency", "8", "--duration", "300ms")
	if code != 0 || !s.Passed {
		t.Fatalf("exit %d: %+v", code, s)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, ip := range []string{"127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"} {
		if ips[ip] == 0 {
			t.Errorf("no request from %s: %v", ip, ips)
		}
	}
	if len(ips) != 4 {
		t.Errorf("requests came from %v, want 127.0.0.1 to 127.0.0.4", ips)
	}
}

func TestBenchLiveMessage(t *testing.T) {
	tests := []struct {
		name, data string
		typ        string
		total      int64
	}{
		{"as the server writes it", `{"type":"results","poll_id":"p","total":1532,"voters":3,"options":[{"id":"a","votes":1}]}`, "results", 1532},
		{"other field order", `{"total":7,"type":"results"}`, "results", 7},
		{"hidden", `{"type":"hidden"}`, "hidden", 0},
		{"vote result", `{"type":"vote_result","ref":"1","status":202}`, "vote_result", 0},
		{"not JSON", `{"type":"results",`, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if typ, total := liveMessage([]byte(tt.data)); typ != tt.typ || total != tt.total {
				t.Errorf("liveMessage = %q, %d; want %q, %d", typ, total, tt.typ, tt.total)
			}
		})
	}
}

// BenchmarkHistogramRecordSince is what a viewer's results message costs
// the load generator at 5,000 votes/s and one message per 200 ms: a
// thousand samples spread over 200 ms.
func BenchmarkHistogramRecordSince(b *testing.B) {
	ts := make([]int64, 1000)
	for i := range ts {
		ts[i] = int64(i) * int64(200*time.Microsecond)
	}
	now := ts[len(ts)-1] + int64(5*time.Millisecond)
	h := newHistogram()
	for b.Loop() {
		h.RecordSince(now, ts)
	}
}
