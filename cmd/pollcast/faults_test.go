package main

import (
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pollcast/pollcast/internal/testsvc"
)

// TestTallyProcessFaults: two tally worker processes share the shards; one
// is killed with SIGKILL mid-load, and (in a second round) the survivor's
// twin is stopped with SIGSTOP past its lease and woken again. Votes keep
// coming through a web node; afterwards the total equals the 202s exactly
// and no device-poll voter is counted twice.
func TestTallyProcessFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	natsURL := testsvc.StartNATSServer(t)
	redisSrv := testsvc.StartRedis(t)
	common := []string{"--nats", natsURL, "--redis", "redis://" + redisSrv.Addr, "--roles", "tally"}
	tally := func() *exec.Cmd { return startChild(t, freeAddr(t), t.TempDir(), common...) }
	t1, t2 := tally(), tally()
	a := startApp(t, func(c *Config) {
		c.NATS, c.Redis = natsURL, []string{"redis://" + redisSrv.Addr}
		c.Shards = 4
		if err := c.parseRoles("ingest,realtime,web,analytics"); err != nil {
			t.Fatal(err)
		}
	})
	id := a.createPoll(map[string]any{"dedupe": "device"})["id"].(string)

	var accepted atomic.Int64
	load := func(round string, n int, during func()) {
		var wg sync.WaitGroup
		var sent atomic.Int64
		for w := range 16 {
			wg.Go(func() {
				for i := w; i < n; i += 16 {
					body := fmt.Sprintf(`{"options":["a"],"voter":"%s-%d","idempotency_key":"%s-%d"}`, round, i, round, i)
					for {
						r, err := a.client.Post(a.url+"/v1/polls/"+id+"/votes", "application/json", strings.NewReader(body))
						if err == nil {
							r.Body.Close()
							if r.StatusCode == http.StatusAccepted {
								accepted.Add(1)
								break
							}
							if r.StatusCode != http.StatusServiceUnavailable {
								t.Errorf("vote %s: %d", body, r.StatusCode)
								break
							}
						}
					}
					sent.Add(1)
				}
			})
		}
		eventually(t, time.Minute, "load under way", func() bool { return sent.Load() > int64(n/3) })
		during()
		wg.Wait()
	}
	converge := func(what string, since time.Time) {
		want := accepted.Load()
		eventually(t, 30*time.Second, what, func() bool { return a.total(id) >= want })
		r := a.results(id)
		if r["total"] != float64(want) || r["voters"] != float64(want) {
			t.Fatalf("%s: results %v, want total and voters %d", what, r, want)
		}
		t.Logf("%s: %d votes accepted and counted exactly; converged %v after the fault", what, want, time.Since(since).Round(time.Millisecond))
	}

	var killed time.Time
	load("kill", 6000, func() {
		if err := t1.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		killed = time.Now()
	})
	converge("SIGKILL of a tally process", killed)

	tally() // a fresh worker beside the survivor, to take over when it stalls
	var stopped time.Time
	load("stop", 6000, func() {
		if err := t2.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		stopped = time.Now()
		time.Sleep(5 * time.Second) // past the 3 s lease TTL, by design: the fault is a stall
		if err := t2.Process.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
	})
	converge("SIGSTOP past the lease, then SIGCONT", stopped)
}
