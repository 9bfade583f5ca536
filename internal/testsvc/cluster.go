package testsvc

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Cluster is three NATS servers with JetStream, routed on loopback: the
// smallest cluster that keeps R3 streams writable when one node is down.
type Cluster struct {
	tb    testing.TB
	opts  []*server.Options
	nodes []*server.Server
}

// StartCluster starts a 3-node cluster and waits until JetStream has a
// meta leader. Nodes are shut down at the end of the test.
func StartCluster(tb testing.TB) *Cluster {
	tb.Helper()
	c := &Cluster{tb: tb}
	clientPorts := []int{freePort(tb), freePort(tb), freePort(tb)}
	routePorts := []int{freePort(tb), freePort(tb), freePort(tb)}
	var routes []*url.URL
	for _, p := range routePorts {
		routes = append(routes, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", p)})
	}
	for i := range 3 {
		c.opts = append(c.opts, &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1), Host: "127.0.0.1", Port: clientPorts[i],
			JetStream: true, StoreDir: tb.TempDir(), NoSigs: true, NoLog: true,
			Cluster: server.ClusterOpts{Name: "pollcast-test", Host: "127.0.0.1", Port: routePorts[i]},
			Routes:  routes,
		})
	}
	c.nodes = make([]*server.Server, 3)
	for i := range 3 {
		c.Start(i)
	}
	tb.Cleanup(func() {
		for i := range c.nodes {
			c.Stop(i)
		}
	})
	c.waitJetStream()
	return c
}

// URLs returns the client URLs of every node, comma-separated.
func (c *Cluster) URLs() string {
	var u []string
	for _, o := range c.opts {
		u = append(u, fmt.Sprintf("nats://127.0.0.1:%d", o.Port))
	}
	return strings.Join(u, ",")
}

// Start starts node i (again, on the same ports and store).
func (c *Cluster) Start(i int) {
	c.tb.Helper()
	ns, err := server.NewServer(c.opts[i])
	if err != nil {
		c.tb.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		c.tb.Fatalf("nats node %d not ready", i)
	}
	c.nodes[i] = ns
}

// Stop shuts node i down abruptly for its clients and peers.
func (c *Cluster) Stop(i int) {
	if ns := c.nodes[i]; ns != nil {
		ns.Shutdown()
		ns.WaitForShutdown()
		c.nodes[i] = nil
	}
}

func (c *Cluster) waitJetStream() {
	c.tb.Helper()
	nc, err := nats.Connect(c.URLs())
	if err != nil {
		c.tb.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		c.tb.Fatal(err)
	}
	Eventually(c.tb, time.Minute, "a JetStream meta leader", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := js.AccountInfo(ctx)
		return err == nil
	})
}
