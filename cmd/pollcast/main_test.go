package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pollcast/pollcast/internal/testsvc"
)

// TestMain lets the test binary stand in for the pollcast binary: the
// crash test starts it as a child process with POLLCAST_TEST_CHILD=1.
func TestMain(m *testing.M) {
	testsvc.RunNATSNodeFromEnv() // the cluster test's NATS nodes are this binary too
	if os.Getenv("POLLCAST_TEST_CHILD") == "1" {
		os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
	}
	code := m.Run()
	testsvc.StopAll()
	os.Exit(code)
}

const testAdminKey = "test-admin-key-0123456789"

// app is a running pollcast process for a test.
type app struct {
	*Main
	t      testing.TB
	url    string
	client *http.Client
}

// startApp starts every role in this process on a free port with a
// temporary data directory; edit adjusts the configuration.
func startApp(t testing.TB, edit ...func(*Config)) *app {
	t.Helper()
	cfg := Config{
		Addr: "127.0.0.1:0", Data: t.TempDir(), VoteRate: 0, Shards: 4, Region: "test",
		AdminKey: testAdminKey, ShutdownTimeout: 5 * time.Second, LogLevel: "warn", LogFormat: "text",
	}
	for _, e := range edit {
		e(&cfg)
	}
	return startAppWith(t, cfg)
}

func startAppWith(t testing.TB, cfg Config) *app {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	m := NewMain(cfg, logger, io.Discard)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := m.Run(ctx); err != nil {
		m.Close()
		t.Fatalf("start: %v", err)
	}
	a := &app{Main: m, t: t, url: "http://" + m.Addr(), client: &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConns: 1000, MaxIdleConnsPerHost: 1000},
	}}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return a
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// reply is a decoded HTTP answer.
type reply struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into a map.
func (r reply) JSON() map[string]any {
	var m map[string]any
	_ = json.Unmarshal(r.Body, &m)
	return m
}

// Code returns the problem document's code.
func (r reply) Code() string {
	s, _ := r.JSON()["code"].(string)
	return s
}

// do sends a request. body is sent as is when it is a string or []byte,
// as JSON otherwise; headers are name, value pairs.
func (a *app) do(method, path string, body any, headers ...string) reply {
	a.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			a.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, a.url+path, rd)
	if err != nil {
		a.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := a.client.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatalf("%s %s: read: %v", method, path, err)
	}
	return reply{Status: resp.StatusCode, Header: resp.Header, Body: data}
}

// admin sends a request with the admin key.
func (a *app) admin(method, path string, body any, headers ...string) reply {
	a.t.Helper()
	return a.do(method, path, body, append([]string{"Authorization", "Bearer " + testAdminKey}, headers...)...)
}

// createPoll creates a poll with the admin key and returns its JSON.
func (a *app) createPoll(fields map[string]any) map[string]any {
	a.t.Helper()
	body := map[string]any{"question": "Best pizza topping?", "options": []map[string]string{{"label": "Mushroom"}, {"label": "Pineapple"}, {"label": "Olives"}}}
	for k, v := range fields {
		body[k] = v
	}
	r := a.admin("POST", "/v1/polls", body)
	if r.Status != http.StatusCreated {
		a.t.Fatalf("create poll: %d %s", r.Status, r.Body)
	}
	return r.JSON()
}

// results reads a poll's results as the owner.
func (a *app) results(id string) map[string]any {
	a.t.Helper()
	r := a.admin("GET", "/v1/polls/"+id+"/results", nil)
	if r.Status != http.StatusOK {
		a.t.Fatalf("results: %d %s", r.Status, r.Body)
	}
	return r.JSON()
}

// total returns a poll's total as the owner sees it.
func (a *app) total(id string) int64 {
	a.t.Helper()
	return int64(a.results(id)["total"].(float64))
}

// eventually polls cond until it holds or timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	testsvc.Eventually(t, timeout, what, cond)
}
