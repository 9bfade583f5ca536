package votelog

import (
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

// StartEmbedded starts an in-process NATS server keeping its JetStream files
// under dir.
func StartEmbedded(dir string) (*Embedded, error) {
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
