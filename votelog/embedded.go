package votelog

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Embedded is a NATS server with JetStream running inside this process with
// no network listener: the log of the single-process mode.
type Embedded struct {
	Server *server.Server
}

// EmbeddedConfig configures StartEmbedded.
type EmbeddedConfig struct {
	// SyncInterval is how often JetStream flushes its files to disk. Zero
	// value means always: every message is written through to disk before
	// the log acknowledges it, so an acknowledged vote survives a power
	// loss. An interval trades that for speed: a crash of the machine (not
	// of the process) may lose the votes of the last interval.
	SyncInterval time.Duration
}

// StartEmbedded starts an in-process NATS server keeping its JetStream files
// under dir.
func StartEmbedded(dir string, cfg EmbeddedConfig) (*Embedded, error) {
	if cfg.SyncInterval < 0 {
		return nil, errors.New("votelog: embedded server: negative sync interval")
	}
	opts := &server.Options{
		ServerName: "pollcast-embedded",
		DontListen: true,
		JetStream:  true,
		StoreDir:   filepath.Join(dir, "jetstream"),
		NoSigs:     true,
		NoLog:      true,
		// Votes are small; the default 1 MiB payload is plenty, but pending
		// buffers for the in-process connections are raised for bursts.
		MaxPending: 256 << 20,
	}
	if cfg.SyncInterval == 0 {
		opts.SyncAlways = true
	} else {
		opts.SyncInterval = cfg.SyncInterval
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("votelog: embedded server: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("votelog: embedded server not ready after 30s")
	}
	return &Embedded{Server: ns}, nil
}

// Sync reports how the running server flushes JetStream to disk, as the
// server itself holds it: always, or every interval.
func (e *Embedded) Sync() (always bool, interval time.Duration) {
	c := e.Server.JetStreamConfig()
	if c == nil {
		return false, 0
	}
	return c.SyncAlways, c.SyncInterval
}

// Connect opens a client connection to the embedded server.
func (e *Embedded) Connect(name string) (*nats.Conn, error) {
	nc, err := nats.Connect("", nats.InProcessServer(e.Server), nats.Name(name),
		nats.MaxReconnects(-1))
	if err != nil {
		return nil, fmt.Errorf("votelog: connect to embedded server: %w", err)
	}
	return nc, nil
}

// Shutdown stops the server and waits until it is down.
func (e *Embedded) Shutdown() {
	e.Server.Shutdown()
	e.Server.WaitForShutdown()
}
