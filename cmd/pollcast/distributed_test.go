package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/pollcast/pollcast/internal/testsvc"
)

// TestDistributedRoles runs pollcast as four processes' worth of roles on
// one external NATS and one Redis: two web nodes (ingest, realtime, web),
// one tally+analytics node and one tally node. A voter racing on both web
// nodes gets one vote; a viewer on node B sees votes cast on node A; when
// a tally node stops, the other takes its shards over; the totals equal
// the 202s exactly.
func TestDistributedRoles(t *testing.T) {
	natsURL := testsvc.StartNATSServer(t)
	redisSrv := testsvc.StartRedis(t)
	chDSN := testsvc.ClickHouse(t)
	node := func(roles string) *app {
		return startApp(t, func(c *Config) {
			c.NATS, c.Redis, c.ClickHouse = natsURL, []string{"redis://" + redisSrv.Addr}, chDSN
			if err := c.parseRoles(roles); err != nil {
				t.Fatal(err)
			}
		})
	}
	t1 := node("tally,analytics")
	node("tally")
	a := node("ingest,realtime,web")
	b := node("ingest,realtime,web")
	id := a.createPoll(map[string]any{"dedupe": "device"})["id"].(string)

	// The same voter on both nodes at once: one vote.
	codes := make(chan int, 20)
	var wg sync.WaitGroup
	for i := range 20 {
		n := []*app{a, b}[i%2]
		wg.Go(func() {
			r, err := n.client.Post(n.url+"/v1/polls/"+id+"/votes", "application/json", strings.NewReader(`{"options":["a"],"voter":"racer"}`))
			if err != nil {
				codes <- 0
				return
			}
			r.Body.Close()
			codes <- r.StatusCode
		})
	}
	wg.Wait()
	close(codes)
	got := map[int]int{}
	for c := range codes {
		got[c]++
	}
	if got[202] != 1 || got[409] != 19 {
		t.Fatalf("racing voter on two nodes: %v, want one 202", got)
	}

	// A viewer on node B.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	viewer, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(b.url, "http")+"/v1/polls/"+id+"/live", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer viewer.CloseNow()
	var lastTotal atomic.Int64
	go func() {
		for {
			m, err := readMessage(ctx, viewer)
			if err != nil {
				return
			}
			if m["type"] == "results" {
				lastTotal.Store(int64(m["total"].(float64)))
			}
		}
	}()

	// Load on node A; one tally node stops half way.
	accepted := atomic.Int64{}
	accepted.Add(1)
	for i := range 600 {
		if i == 300 {
			if err := t1.Close(); err != nil {
				t.Fatal(err)
			}
		}
		r := a.do("POST", "/v1/polls/"+id+"/votes", fmt.Sprintf(`{"options":["b"],"voter":"v%d"}`, i))
		if r.Status != http.StatusAccepted {
			t.Fatalf("vote %d: %d %s", i, r.Status, r.Body)
		}
		accepted.Add(1)
	}
	lastVote := time.Now()
	want := accepted.Load()
	eventually(t, 15*time.Second, "node B's viewer sees every vote", func() bool { return lastTotal.Load() == want })
	t.Logf("%d votes through node A; node B's viewer converged %v after the last vote, with one tally node stopped mid-load",
		want, time.Since(lastVote).Round(time.Millisecond))
	for _, n := range []*app{a, b} {
		if got := n.total(id); got != want {
			t.Fatalf("total on %s = %d, want %d", n.url, got, want)
		}
	}
}

// TestRateLimitSharedAcrossNodes: a client's votes count against one
// limit whichever node takes them.
func TestRateLimitSharedAcrossNodes(t *testing.T) {
	natsURL := testsvc.StartNATSServer(t)
	redisSrv := testsvc.StartRedis(t)
	node := func() *app {
		return startApp(t, func(c *Config) {
			c.NATS, c.Redis, c.VoteRate = natsURL, []string{"redis://" + redisSrv.Addr}, 1 // bursts of 4
		})
	}
	a, b := node(), node()
	id := a.createPoll(map[string]any{"dedupe": "none"})["id"].(string)
	statuses := map[int]int{}
	for i := range 8 {
		n := []*app{a, b}[i%2]
		statuses[n.do("POST", "/v1/polls/"+id+"/votes", `{"options":["a"]}`).Status]++
	}
	// Each node alone would allow 4; shared, the two allow about 4 together.
	if statuses[202] > 5 || statuses[429] < 3 {
		t.Fatalf("statuses across two nodes %v: the limit is not shared", statuses)
	}
}
