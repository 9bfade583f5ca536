package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestParseConfig(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	tests := []struct {
		name    string
		args    []string
		env     func(string) string
		wantErr string
		check   func(t *testing.T, c Config)
	}{
		{"defaults", nil, env(), "", func(t *testing.T, c Config) {
			if c.Addr != "127.0.0.1:8080" || c.Data != "./data" || c.VoteRate != 50 || c.Shards != 16 || len(c.Roles) != 5 || c.Replicas != 1 {
				t.Fatalf("defaults %+v", c)
			}
		}},
		{"env fallback", nil, env("POLLCAST_ADDR", ":9000", "POLLCAST_VOTE_RATE", "0", "POLLCAST_ADMIN_KEY", "k"), "", func(t *testing.T, c Config) {
			if c.Addr != ":9000" || c.VoteRate != 0 || c.AdminKey != "k" {
				t.Fatalf("env %+v", c)
			}
		}},
		{"flag beats env", []string{"--addr", ":1"}, env("POLLCAST_ADDR", ":2"), "", func(t *testing.T, c Config) {
			if c.Addr != ":1" {
				t.Fatalf("addr %q", c.Addr)
			}
		}},
		{"trusted proxies", []string{"--trusted-proxies", "10.0.0.0/8, 127.0.0.1,::1"}, env(), "", func(t *testing.T, c Config) {
			if len(c.TrustedProxies) != 3 || c.TrustedProxies[1].String() != "127.0.0.1/32" {
				t.Fatalf("proxies %v", c.TrustedProxies)
			}
		}},
		{"distributed roles", []string{"--roles", "tally", "--nats", "nats://n:4222", "--redis", "redis://r:6379"}, env(), "", func(t *testing.T, c Config) {
			if !c.Roles["tally"] || c.Roles["web"] || c.NATS != "nats://n:4222" || len(c.Redis) != 1 {
				t.Fatalf("%+v", c)
			}
		}},
		{"bad rate", []string{"--vote-rate", "-1"}, env(), "--vote-rate", nil},
		{"bad shards", []string{"--shards", "0"}, env(), "--shards", nil},
		{"bad redis", []string{"--redis", "http://x"}, env(), "--redis", nil},
		{"unknown role", []string{"--roles", "ingest,magic"}, env(), "unknown role", nil},
		{"web without ingest", []string{"--roles", "web,realtime", "--nats", "nats://n", "--redis", "redis://r"}, env(), "needs ingest", nil},
		{"roles without nats", []string{"--roles", "tally", "--redis", "redis://r"}, env(), "--nats", nil},
		{"roles without redis", []string{"--roles", "tally", "--nats", "nats://n"}, env(), "--redis", nil},
		{"split sqlite", []string{"--roles", "ingest,realtime,web", "--nats", "nats://n", "--redis", "redis://r"}, env(), "--clickhouse", nil},
		{"public url", []string{"--public-url", "https://polls.example.com/"}, env(), "", func(t *testing.T, c Config) {
			if c.PublicURL != "https://polls.example.com" {
				t.Fatalf("public url %q", c.PublicURL)
			}
		}},
		{"public url with a path", []string{"--public-url", "https://example.com/polls"}, env(), "--public-url", nil},
		{"public url without scheme", []string{"--public-url", "polls.example.com"}, env(), "--public-url", nil},
		{"bad log level", []string{"--log-level", "loud"}, env(), "--log-level", nil},
		{"bounds defaults", nil, env(), "", func(t *testing.T, c Config) {
			if c.BodyReadTimeout != 10*time.Second || c.MaxLivePerIP != 500 || c.MaxTokenTTL != 24*time.Hour {
				t.Fatalf("bounds %v %d %v", c.BodyReadTimeout, c.MaxLivePerIP, c.MaxTokenTTL)
			}
		}},
		{"bounds from env", nil, env("POLLCAST_BODY_READ_TIMEOUT", "3s", "POLLCAST_MAX_LIVE_PER_IP", "0", "POLLCAST_MAX_TOKEN_TTL", "1h"), "", func(t *testing.T, c Config) {
			if c.BodyReadTimeout != 3*time.Second || c.MaxLivePerIP != 0 || c.MaxTokenTTL != time.Hour {
				t.Fatalf("bounds %v %d %v", c.BodyReadTimeout, c.MaxLivePerIP, c.MaxTokenTTL)
			}
		}},
		{"bad body read timeout", []string{"--body-read-timeout", "0s"}, env(), "--body-read-timeout", nil},
		{"bad live cap", []string{"--max-live-per-ip", "-1"}, env(), "--max-live-per-ip", nil},
		{"bad token ttl", []string{"--max-token-ttl", "forever"}, env(), "--max-token-ttl", nil},
		{"stray argument", []string{"extra"}, env(), "unexpected", nil},
		{"fsync always by default", nil, env(), "", func(t *testing.T, c Config) {
			if c.Fsync != 0 {
				t.Fatalf("fsync %v, want 0 (always)", c.Fsync)
			}
		}},
		{"fsync interval", []string{"--fsync", "2m"}, env(), "", func(t *testing.T, c Config) {
			if c.Fsync != 2*time.Minute {
				t.Fatalf("fsync %v", c.Fsync)
			}
		}},
		{"fsync from env", nil, env("POLLCAST_FSYNC", "1s"), "", func(t *testing.T, c Config) {
			if c.Fsync != time.Second {
				t.Fatalf("fsync %v", c.Fsync)
			}
		}},
		{"fsync always spelled out", []string{"--fsync", "Always"}, env("POLLCAST_FSYNC", "1s"), "", func(t *testing.T, c Config) {
			if c.Fsync != 0 {
				t.Fatalf("fsync %v", c.Fsync)
			}
		}},
		{"fsync always with nats", []string{"--nats", "nats://n:4222"}, env(), "", func(t *testing.T, c Config) {
			if c.Fsync != 0 || c.NATS == "" {
				t.Fatalf("%+v", c)
			}
		}},
		{"fsync never", []string{"--fsync", "never"}, env(), `--fsync: "never": want always or an interval such as 1s or 2m`, nil},
		{"fsync zero", []string{"--fsync", "0"}, env(), "--fsync", nil},
		{"fsync negative", []string{"--fsync", "-1s"}, env(), "--fsync", nil},
		{"fsync empty", []string{"--fsync", ""}, env(), "--fsync", nil},
		{"fsync bad env", nil, env("POLLCAST_FSYNC", "sometimes"), "--fsync", nil},
		{"fsync interval with nats", []string{"--fsync", "1s", "--nats", "nats://n:4222"}, env(), "--fsync: sets the embedded log's flushes only", nil},
		{"snapshots and retention", nil, env("POLLCAST_LOG_RETENTION", "720h"), "", func(t *testing.T, c Config) {
			if c.SnapshotInterval != time.Minute || c.LogRetention != 720*time.Hour {
				t.Fatalf("snapshot interval %v, retention %v", c.SnapshotInterval, c.LogRetention)
			}
		}},
		{"no retention by default", nil, env(), "", func(t *testing.T, c Config) {
			if c.LogRetention != 0 {
				t.Fatalf("retention %v", c.LogRetention)
			}
		}},
		{"bad snapshot interval", []string{"--snapshot-interval", "-1s"}, env(), "--snapshot-interval", nil},
		{"bad retention", []string{"--log-retention", "a month"}, env(), "--log-retention", nil},
		{"retention without snapshots", []string{"--log-retention", "24h", "--snapshot-interval", "0"}, env(), "--snapshot-interval above 0", nil},
		{"retention without the tally", []string{"--roles", "ingest,realtime,web", "--nats", "nats://n", "--redis", "redis://r", "--clickhouse", "clickhouse://c:9000/p", "--log-retention", "24h"}, env(), "tally and analytics", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseConfig(tt.args, tt.env, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

// TestPprofOnItsOwnListener: profiles are served only on --pprof, never on
// the public address.
func TestPprofOnItsOwnListener(t *testing.T) {
	addr := freeAddr(t)
	a := startApp(t, func(c *Config) { c.Pprof = addr })
	resp, err := http.Get("http://" + addr + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "goroutine profile") {
		t.Fatalf("pprof listener: %d %.100s", resp.StatusCode, body)
	}
	if r := a.do("GET", "/debug/pprof/", nil); r.Status != 404 {
		t.Fatalf("public address serves profiles: %d", r.Status)
	}
}

// TestPprofAddressTaken: a --pprof address in use fails the start with a
// clear error, and Close returns rather than wait for a server that never
// started.
func TestPprofAddressTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := Config{Addr: "127.0.0.1:0", Data: t.TempDir(), Shards: 4, AdminKey: testAdminKey,
		ShutdownTimeout: 5 * time.Second, LogLevel: "warn", LogFormat: "text", Pprof: ln.Addr().String()}
	m := NewMain(cfg, slog.New(slog.DiscardHandler), io.Discard)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := m.Run(ctx); err == nil || !strings.Contains(err.Error(), "pprof") {
		t.Fatalf("start with the pprof address taken: %v", err)
	}
	closed := make(chan error, 1)
	go func() { closed <- m.Close() }()
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatal("Close hangs after a failed start")
	}
}
