package ingest_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pollcast/pollcast/ingest"
	"github.com/pollcast/pollcast/internal/testsvc"
	"github.com/pollcast/pollcast/poll"
	"github.com/pollcast/pollcast/votelog"
)

// TestLogRefusesWrites: when the log refuses writes for want of room —
// the VOTES stream at its size limit, or the server's JetStream storage
// used up — votes get 503 overloaded with Retry-After, Ready fails naming
// the reason, pollcast_log_refusing{reason} is 1; once room returns, with
// no vote sent meanwhile, a probe clears all three and votes are stored.
func TestLogRefusesWrites(t *testing.T) {
	tests := []struct {
		name   string
		opts   func(*server.Options)
		fill   func(tb testing.TB, js jetstream.JetStream) // makes the log refuse soon
		free   func(tb testing.TB, js jetstream.JetStream)
		reason string
	}{
		{
			name: "stream at its size limit",
			fill: func(tb testing.TB, js jetstream.JetStream) { setMaxBytes(tb, js, 32<<10) },
			free: func(tb testing.TB, js jetstream.JetStream) { setMaxBytes(tb, js, -1) },
			// The stream's limit: votes are refused rather than old ones dropped.
			reason: ingest.RefusingStreamLimit,
		},
		{
			name: "server storage used up",
			opts: func(o *server.Options) { o.JetStreamMaxStore = 256 << 10 },
			fill: func(testing.TB, jetstream.JetStream) {},
			free: func(tb testing.TB, js jetstream.JetStream) {
				tb.Helper()
				s, err := js.Stream(context.Background(), votelog.StreamName)
				if err != nil {
					tb.Fatal(err)
				}
				if err := s.Purge(context.Background()); err != nil {
					tb.Fatal(err)
				}
			},
			reason: ingest.RefusingServerStorage,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			nc, js := startServer(t, tt.opts)
			cat, err := poll.OpenCatalog(ctx, js, poll.CatalogConfig{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(cat.Close)
			reg := prometheus.NewRegistry()
			s, err := ingest.New(nc, cat, ingest.Config{Shards: 4, Registerer: reg, LogProbe: 20 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(s.Close)
			if err := s.Rebuild(ctx); err != nil {
				t.Fatal(err)
			}
			p, err := poll.New(poll.CreateInput{Question: "Q", Dedupe: poll.DedupeNone, Options: []poll.OptionInput{{Label: "A"}, {Label: "B"}}}, "o", time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if err := cat.CreatePoll(ctx, p); err != nil {
				t.Fatal(err)
			}
			if err := s.Ready(ctx); err != nil {
				t.Fatalf("ready before: %v", err)
			}
			if got := refusing(t, reg, tt.reason); got != 0 {
				t.Fatalf("pollcast_log_refusing{reason=%q} = %v before, want 0", tt.reason, got)
			}

			tt.fill(t, js)
			vote := func() error {
				_, err := s.Vote(ctx, ingest.Request{PollID: p.ID, Options: []string{"a"}})
				return err
			}
			var refused error
			for i := 0; i < 100_000 && refused == nil; i++ {
				refused = vote()
			}
			var pe *poll.Error
			if !errors.As(refused, &pe) || !errors.Is(refused, poll.ErrOverloaded) || pe.RetryAfter <= 0 {
				t.Fatalf("vote on a full log: %v, want overloaded with a Retry-After", refused)
			}
			err = s.Ready(ctx)
			if err == nil || !strings.Contains(err.Error(), "refuses writes") || !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("ready on a full log: %v, want the log refusing writes (%s)", err, tt.reason)
			}
			if got := refusing(t, reg, tt.reason); got != 1 {
				t.Fatalf("pollcast_log_refusing{reason=%q} = %v while full, want 1", tt.reason, got)
			}
			// Still full: the probe keeps it failing.
			if err := vote(); !errors.Is(err, poll.ErrOverloaded) {
				t.Fatalf("vote on a full log: %v", err)
			}

			tt.free(t, js)
			testsvc.Eventually(t, 10*time.Second, "ready once the log has room", func() bool { return s.Ready(ctx) == nil })
			if got := refusing(t, reg, tt.reason); got != 0 {
				t.Fatalf("pollcast_log_refusing{reason=%q} = %v after room returned, want 0", tt.reason, got)
			}
			if err := vote(); err != nil {
				t.Fatalf("vote once the log has room: %v", err)
			}
		})
	}
}

// TestRefusingReasons: which answers of the log are refusals for want of room.
func TestRefusingReasons(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
		want string
	}{
		{"stream max bytes", &jetstream.APIError{Code: 503, ErrorCode: 10077, Description: "maximum bytes exceeded"}, ingest.RefusingStreamLimit},
		{"stream max messages", &jetstream.APIError{Code: 503, ErrorCode: 10077, Description: "maximum messages exceeded"}, ingest.RefusingStreamLimit},
		{"message too large", &jetstream.APIError{Code: 503, ErrorCode: 10077, Description: "message too large"}, ""},
		{"account limit", &jetstream.APIError{Code: 400, ErrorCode: 10002, Description: "resource limits exceeded for account"}, ingest.RefusingAccountLimit},
		{"server storage", &jetstream.APIError{Code: 503, ErrorCode: 10023, Description: "insufficient resources"}, ingest.RefusingServerStorage},
		{"storage reservation", &jetstream.APIError{Code: 500, ErrorCode: 10047, Description: "insufficient storage resources available"}, ingest.RefusingServerStorage},
		{"timeout", nats.ErrTimeout, ""},
		{"no stream", jetstream.ErrNoStreamResponse, ""},
	} {
		if got := ingest.RefusedFor(tt.err); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

// startServer starts an in-process NATS server with JetStream, adjusted
// by opts, with the VOTES stream.
func startServer(tb testing.TB, opts func(*server.Options)) (*nats.Conn, jetstream.JetStream) {
	tb.Helper()
	o := &server.Options{DontListen: true, JetStream: true, StoreDir: filepath.Join(tb.TempDir(), "jetstream"), NoSigs: true, NoLog: true}
	if opts != nil {
		opts(o)
	}
	ns, err := server.NewServer(o)
	if err != nil {
		tb.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		tb.Fatal("nats server not ready")
	}
	tb.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	nc, err := nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := votelog.EnsureStream(context.Background(), js, votelog.StreamConfig{}); err != nil {
		tb.Fatal(err)
	}
	return nc, js
}

// setMaxBytes sets the VOTES stream's size limit.
func setMaxBytes(tb testing.TB, js jetstream.JetStream, n int64) {
	tb.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, votelog.StreamName)
	if err != nil {
		tb.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	cfg.MaxBytes = n
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		tb.Fatal(err)
	}
}

// refusing returns the value of pollcast_log_refusing{reason}.
func refusing(tb testing.TB, g prometheus.Gatherer, reason string) float64 {
	tb.Helper()
	mfs, err := g.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "pollcast_log_refusing" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	tb.Fatalf("no pollcast_log_refusing{reason=%q}", reason)
	return 0
}
