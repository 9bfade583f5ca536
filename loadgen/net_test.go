package loadgen

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestSources runs against a baseline-like server that notes the address
// each connection comes from.
func TestSources(t *testing.T) {
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
	cfg := testConfig("http", srv.URL)
	cfg.Poll, cfg.Sources, cfg.Concurrency, cfg.Duration = "x", 4, 8, 300*time.Millisecond
	s, err := runGenerator(t, cfg)
	if err != nil || !s.Passed {
		t.Fatalf("run: %v: %+v", err, s)
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

// testConfig is a configuration for scenario against url with the
// defaults of `pollcast bench`.
func testConfig(scenario, url string) Config {
	return Config{Scenario: scenario, URL: url, Option: "a", Duration: 10 * time.Second, Concurrency: 64,
		Pipeline: 8, BatchSize: 1000, Viewers: 100, Live: "ws", Sources: 1}
}

// runGenerator runs cfg to the end and returns its summary.
func runGenerator(t testing.TB, cfg Config) (*Summary, error) {
	t.Helper()
	g, err := New(io.Discard, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer g.Close()
	return g.Run(context.Background())
}
