package testsvc

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Cluster is three NATS servers with JetStream, routed on loopback: the
// smallest cluster that keeps R3 streams writable when one node is down.
// Each node is a child process running the test binary, so a node can be
// killed with SIGKILL.
type Cluster struct {
	tb    testing.TB
	opts  []*server.Options
	procs []*exec.Cmd
	waits []chan struct{}
}

// natsNodeEnv carries a child node's options (JSON) to RunNATSNodeFromEnv.
const natsNodeEnv = "POLLCAST_TEST_NATS_NODE"

type nodeSpec struct {
	Name      string   `json:"name"`
	Port      int      `json:"port"`
	RoutePort int      `json:"route_port"`
	Routes    []string `json:"routes"`
	StoreDir  string   `json:"store_dir"`
}

// RunNATSNodeFromEnv runs a cluster node and never returns when this
// process was started as one (call it first in TestMain); otherwise it
// returns at once.
func RunNATSNodeFromEnv() {
	raw := os.Getenv(natsNodeEnv)
	if raw == "" {
		return
	}
	var spec nodeSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		fmt.Fprintln(os.Stderr, "nats node:", err)
		os.Exit(2)
	}
	var routes []*url.URL
	for _, r := range spec.Routes {
		u, _ := url.Parse(r)
		routes = append(routes, u)
	}
	ns, err := server.NewServer(&server.Options{
		ServerName: spec.Name, Host: "127.0.0.1", Port: spec.Port, JetStream: true, StoreDir: spec.StoreDir, NoLog: true,
		Cluster: server.ClusterOpts{Name: "pollcast-test", Host: "127.0.0.1", Port: spec.RoutePort}, Routes: routes,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "nats node:", err)
		os.Exit(2)
	}
	ns.Start()
	ns.WaitForShutdown()
	os.Exit(0)
}

// StartClusterProcs starts a 3-node cluster of child processes running
// this test binary (whose TestMain calls RunNATSNodeFromEnv) and waits until
// JetStream has a meta leader. Nodes are killed at the end of the test.
func StartClusterProcs(tb testing.TB) *Cluster {
	tb.Helper()
	c := &Cluster{tb: tb, procs: make([]*exec.Cmd, 3), waits: make([]chan struct{}, 3)}
	clientPorts := []int{freePort(tb), freePort(tb), freePort(tb)}
	routePorts := []int{freePort(tb), freePort(tb), freePort(tb)}
	var routes []*url.URL
	for _, p := range routePorts {
		routes = append(routes, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", p)})
	}
	for i := range 3 {
		c.opts = append(c.opts, &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1), Port: clientPorts[i], StoreDir: tb.TempDir(),
			Cluster: server.ClusterOpts{Port: routePorts[i]}, Routes: routes,
		})
	}
	c.startAll()
	return c
}

func (c *Cluster) startAll() {
	for i := range 3 {
		c.Start(i)
	}
	c.tb.Cleanup(func() {
		for i := range c.procs {
			c.Stop(i)
		}
	})
	c.waitJetStream()
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
	o := c.opts[i]
	spec := nodeSpec{Name: o.ServerName, Port: o.Port, RoutePort: o.Cluster.Port, StoreDir: o.StoreDir}
	for _, r := range o.Routes {
		spec.Routes = append(spec.Routes, r.String())
	}
	raw, _ := json.Marshal(spec)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), natsNodeEnv+"="+string(raw))
	if err := cmd.Start(); err != nil {
		c.tb.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	c.procs[i], c.waits[i] = cmd, done
	Eventually(c.tb, 30*time.Second, "nats node "+o.ServerName+" listening", func() bool {
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", o.Port), time.Second)
		if err == nil {
			conn.Close()
		}
		return err == nil
	})
}

// Stop kills node i with SIGKILL.
func (c *Cluster) Stop(i int) {
	if c.procs[i] != nil {
		_ = c.procs[i].Process.Signal(syscall.SIGKILL)
		<-c.waits[i]
		c.procs[i] = nil
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
