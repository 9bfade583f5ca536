package testsvc

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pollcast/pollcast/poll"
	"github.com/pollcast/pollcast/votelog"
)

// Log is an in-process NATS server with JetStream on a temporary
// directory, the VOTES stream, and a client connection.
type Log struct {
	Emb *votelog.Embedded
	NC  *nats.Conn
	JS  jetstream.JetStream
}

// FixtureSync is the sync interval of StartLog's server: JetStream's own
// default. Tests that fill a log to read it do not test the flush to disk,
// and a flush per message would make their fixtures minutes long; tests of
// what a vote's acknowledgement promises use StartLogWith and the zero
// votelog.EmbeddedConfig, pollcast's default.
const FixtureSync = 2 * time.Minute

// StartLog starts a Log for the test; it is shut down at the end.
func StartLog(tb testing.TB) *Log {
	tb.Helper()
	return StartLogIn(tb, tb.TempDir())
}

// StartLogIn is StartLog on a given directory, for restarts on the same data.
func StartLogIn(tb testing.TB, dir string) *Log {
	tb.Helper()
	return StartLogWith(tb, dir, votelog.EmbeddedConfig{SyncInterval: FixtureSync})
}

// StartLogWith is StartLogIn with the embedded server configured by cfg.
func StartLogWith(tb testing.TB, dir string, cfg votelog.EmbeddedConfig) *Log {
	tb.Helper()
	emb, err := votelog.StartEmbedded(dir, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(emb.Shutdown)
	nc, err := emb.Connect("test")
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
	return &Log{Emb: emb, NC: nc, JS: js}
}

// Catalog opens a poll catalog on the log, closed at the end of the test.
func (l *Log) Catalog(tb testing.TB) *poll.Catalog {
	tb.Helper()
	c, err := poll.OpenCatalog(context.Background(), l.JS, poll.CatalogConfig{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	return c
}

// StartNATSServer starts a NATS server with JetStream listening on a free
// loopback port, as an external cluster member would, and returns its URL.
func StartNATSServer(tb testing.TB) string {
	tb.Helper()
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: tb.TempDir(), NoSigs: true, NoLog: true,
	})
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
	return ns.ClientURL()
}
