package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pollcast/pollcast/internal/testsvc"
)

// TestClusterFaults: a 3-node NATS cluster (streams R3), Redis, ClickHouse,
// two ingest/web processes and two tally processes. 20,000 votes from
// concurrent clients that retry with their idempotency keys on the other
// node; meanwhile a tally process is SIGKILLed (and restarted), an ingest
// process is SIGKILLed (and restarted), Redis is flushed, a NATS node is
// SIGKILLed and restarted, and a tally process is SIGSTOPped past its lease
// and woken. Afterwards results and analytics count every 202 exactly
// once, and no voter twice.
func TestClusterFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster and child processes")
	}
	cluster := testsvc.StartClusterProcs(t)
	redisSrv := testsvc.StartRedis(t)
	chDSN := testsvc.ClickHouse(t)
	common := []string{"--nats", cluster.URLs(), "--replicas", "3", "--redis", "redis://" + redisSrv.Addr, "--clickhouse", chDSN}
	child := func(addr string, roles string) *childNode {
		n := &childNode{addr: addr, dir: t.TempDir(), args: append([]string{"--roles", roles}, common...)}
		n.start(t)
		return n
	}
	tallyA := child(freeAddr(t), "tally,analytics")
	tallyB := child(freeAddr(t), "tally")
	ingestA := child(freeAddr(t), "ingest,realtime,web")
	ingestB := child(freeAddr(t), "ingest,realtime,web")
	nodes := []*childNode{ingestA, ingestB}
	admin := &app{t: t, url: "http://" + ingestB.addr, client: &http.Client{Timeout: 10 * time.Second}}
	id := admin.createPoll(map[string]any{"dedupe": "device"})["id"].(string)

	const votes, workers = 20_000, 32
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	var sent, accepted, retries atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < votes; i += workers {
				body := fmt.Sprintf(`{"options":["%c"],"voter":"v%d","idempotency_key":"k%d"}`, 'a'+i%3, i, i)
				for attempt := 0; ; attempt++ {
					n := nodes[(i+attempt)%2] // retry on the other node
					r, err := client.Post("http://"+n.addr+"/v1/polls/"+id+"/votes", "application/json", strings.NewReader(body))
					if err == nil {
						r.Body.Close()
						if r.StatusCode == http.StatusAccepted {
							accepted.Add(1)
							break
						}
						if r.StatusCode != http.StatusServiceUnavailable {
							t.Errorf("vote %d: status %d", i, r.StatusCode)
							break
						}
					}
					retries.Add(1)
					time.Sleep(20 * time.Millisecond) // client back-off before retrying
				}
				sent.Add(1)
			}
		})
	}
	at := func(frac float64) {
		eventually(t, 3*time.Minute, fmt.Sprintf("%.0f%% of the load", frac*100), func() bool { return sent.Load() >= int64(frac*votes) })
	}
	start := time.Now()
	at(0.1)
	tallyB.kill(t)
	t.Logf("SIGKILLed a tally process at %d votes", sent.Load())
	at(0.15)
	tallyB.start(t)
	at(0.2)
	ingestA.kill(t)
	t.Logf("SIGKILLed an ingest process at %d votes", sent.Load())
	at(0.35)
	ingestA.start(t)
	at(0.5)
	rdb := redis.NewClient(&redis.Options{Addr: redisSrv.Addr})
	defer rdb.Close()
	if err := rdb.FlushAll(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	t.Logf("FLUSHALL on Redis at %d votes", sent.Load())
	at(0.65)
	cluster.Stop(1)
	t.Logf("SIGKILLed NATS node 2 at %d votes", sent.Load())
	at(0.8)
	cluster.Start(1)
	t.Logf("restarted NATS node 2 at %d votes", sent.Load())
	at(0.85)
	if err := tallyA.signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Logf("SIGSTOPped a tally process at %d votes", sent.Load())
	stopped := time.Now()
	time.Sleep(4 * time.Second) // the fault itself: stalled past the 3 s lease TTL while votes keep coming
	if err := tallyA.signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	t.Logf("SIGCONT after %v, at %d votes", time.Since(stopped).Round(time.Millisecond), sent.Load())
	wg.Wait()
	loadDone := time.Now()

	want := accepted.Load()
	if want != votes {
		t.Fatalf("%d votes accepted, want all %d (clients retry until accepted)", want, votes)
	}
	eventually(t, time.Minute, "results converge", func() bool { return admin.total(id) >= want })
	converged := time.Since(loadDone)
	r := admin.results(id)
	if r["total"] != float64(want) || r["voters"] != float64(want) {
		t.Fatalf("results %v, want total and voters %d", r, want)
	}
	eventually(t, 2*time.Minute, "analytics converge", func() bool {
		b := admin.admin("GET", "/v1/polls/"+id+"/analytics/breakdown?by=region", nil)
		rows, _ := b.JSON()["rows"].([]any)
		return len(rows) == 1 && rows[0].(map[string]any)["votes"] == float64(want)
	})
	t.Logf("%d votes sent, %d accepted, %d retries, load %v; results exact %v after the load, analytics exact %v after",
		sent.Load(), want, retries.Load(), loadDone.Sub(start).Round(time.Millisecond), converged.Round(time.Millisecond),
		time.Since(loadDone).Round(time.Millisecond))
}

// childNode is a pollcast child process that can be killed and restarted
// on the same address and data.
type childNode struct {
	addr, dir string
	args      []string
	signal    func(syscall.Signal) error
}

func (n *childNode) start(t *testing.T) {
	cmd := startChild(t, n.addr, n.dir, n.args...)
	n.signal = func(s syscall.Signal) error { return cmd.Process.Signal(s) }
}

func (n *childNode) kill(t *testing.T) {
	if err := n.signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
}
