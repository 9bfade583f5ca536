package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pollcast/pollcast/internal/testsvc"
)

// TestRedisFlushAllMidLoad: with the Redis tally store, FLUSHALL in the
// middle of a load loses nothing and counts nothing twice: the shards see
// their watermark gone and rebuild from the log, and the voter registry is
// rebuilt from the log before votes of the poll are admitted again. A
// restart then resumes from the watermarks in Redis.
func TestRedisFlushAllMidLoad(t *testing.T) {
	srv := testsvc.StartRedis(t)
	dir := t.TempDir()
	cfg := func(c *Config) { c.Redis = []string{"redis://" + srv.Addr + "/0"}; c.Data = dir }
	a := startApp(t, cfg)
	id := a.createPoll(map[string]any{"dedupe": "device"})["id"].(string)

	var accepted atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				body := fmt.Sprintf(`{"options":["%c"],"voter":"w%d-%d"}`, 'a'+i%3, w, i)
				resp, err := a.client.Post(a.url+"/v1/polls/"+id+"/votes", "application/json", strings.NewReader(body))
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode == 202 {
					accepted.Add(1)
				}
			}
		})
	}
	eventually(t, 30*time.Second, "load under way", func() bool { return accepted.Load() > 1000 })
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	if err := rdb.FlushAll(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	flushedAt := accepted.Load()
	eventually(t, 30*time.Second, "more load after the flush", func() bool { return accepted.Load() > flushedAt+1000 })
	close(stop)
	wg.Wait()
	want := accepted.Load()
	start := time.Now()
	eventually(t, 30*time.Second, "counts converge", func() bool { return a.total(id) >= want })
	t.Logf("%d votes accepted, FLUSHALL after %d; converged %v after the load", want, flushedAt, time.Since(start).Round(time.Millisecond))
	r := a.results(id)
	if r["total"] != float64(want) || r["voters"] != float64(want) {
		t.Fatalf("results %v, want total and voters %d", r, want)
	}
	// The flush took the one-vote-per-voter registry with it: it was
	// rebuilt from the log, so voters from before the flush are refused.
	for w := range 8 {
		body := fmt.Sprintf(`{"options":["c"],"voter":"w%d-0"}`, w)
		if r := a.do("POST", "/v1/polls/"+id+"/votes", body); r.Status != 409 || r.Code() != "already_voted" {
			t.Fatalf("voter w%d-0, who voted before the flush, votes again: %d %s", w, r.Status, r.Body)
		}
	}

	// Restart on the same data and Redis: the counts are there at once.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	b := startApp(t, cfg)
	if got := b.total(id); got != want {
		t.Fatalf("after restart: total %d, want %d", got, want)
	}

	// One voter, one vote, remembered in Redis across a restart.
	body := `{"options":["a"],"voter":"after-restart","idempotency_key":"k1"}`
	first := b.do("POST", "/v1/polls/"+id+"/votes", body)
	if first.Status != 202 {
		t.Fatalf("vote: %d %s", first.Status, first.Body)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	c := startApp(t, cfg)
	if r := c.do("POST", "/v1/polls/"+id+"/votes", `{"options":["b"],"voter":"after-restart"}`); r.Code() != "already_voted" {
		t.Fatalf("second vote after restart: %d %s", r.Status, r.Body)
	}
	if r := c.do("POST", "/v1/polls/"+id+"/votes", body); r.Status != 202 || r.JSON()["vote_id"] != first.JSON()["vote_id"] {
		t.Fatalf("retry after restart: %d %s, want vote %v", r.Status, r.Body, first.JSON()["vote_id"])
	}
	// With Redis down, a device poll cannot check its voters: 503, never a 202.
	srv.Stop()
	if r := c.do("POST", "/v1/polls/"+id+"/votes", `{"options":["b"],"voter":"while-redis-is-down"}`); r.Status != 503 || r.Code() != "overloaded" {
		t.Fatalf("vote with Redis down: %d %s", r.Status, r.Body)
	}
}
