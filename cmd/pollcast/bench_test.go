package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pollcast/pollcast/loadgen"
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
func benchJSON(t testing.TB, args ...string) (int, *loadgen.Summary) {
	t.Helper()
	code, out, errOut := benchRun(t, append(args, "--json")...)
	t.Logf("stderr:\n%s", errOut)
	var s loadgen.Summary
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("summary: %v\n%s", err, out)
	}
	return code, &s
}

// checkExact asserts a passing run on a fresh poll, counted as the
// server's own results say.
func checkExact(t *testing.T, a *app, code int, s *loadgen.Summary) {
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
func checkLatency(t *testing.T, l loadgen.LatencySummary, of string) {
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

// TestBenchWSRate checks that with --rate the ws scenario sends as paced.
func TestBenchWSRate(t *testing.T) {
	a := startApp(t)
	code, s := benchJSON(t, benchArgs(a, "ws", "--concurrency", "3", "--rate", "200", "--duration", "1500ms")...)
	checkExact(t, a, code, s)
	if s.OK > 320 || s.OK+s.Behind < 250 {
		t.Errorf("%d votes, %d behind in 1.5 s at 200 votes/s", s.OK, s.Behind)
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
