package testsvc

import (
	"context"
	"testing"

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

// StartLog starts a Log for the test; it is shut down at the end.
func StartLog(tb testing.TB) *Log {
	tb.Helper()
	return StartLogIn(tb, tb.TempDir())
}

// StartLogIn is StartLog on a given directory, for restarts on the same data.
func StartLogIn(tb testing.TB, dir string) *Log {
	tb.Helper()
	emb, err := votelog.StartEmbedded(dir)
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
