package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestConcurrentVotesAreCountedExactly: 5,000 votes from 500 concurrent
// clients with distinct voters; the total equals the number of 202s.
func TestConcurrentVotesAreCountedExactly(t *testing.T) {
	a := startApp(t)
	id := a.createPoll(nil)["id"].(string)
	const clients, perClient = 500, 10
	var accepted, other atomic.Int64
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for i := range perClient {
				body := fmt.Sprintf(`{"options":["%c"],"voter":"c%d-v%d"}`, 'a'+(c+i)%3, c, i)
				req, _ := http.NewRequest("POST", a.url+"/v1/polls/"+id+"/votes", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				resp, err := a.client.Do(req)
				if err != nil {
					other.Add(1)
					continue
				}
				resp.Body.Close()
				if resp.StatusCode == 202 {
					accepted.Add(1)
				} else {
					other.Add(1)
				}
			}
		})
	}
	wg.Wait()
	t.Logf("sent %d votes: %d accepted, %d not", clients*perClient, accepted.Load(), other.Load())
	if accepted.Load() == 0 {
		t.Fatal("no vote accepted")
	}
	eventually(t, 5*time.Second, "total equals accepted", func() bool { return a.total(id) >= accepted.Load() })
	r := a.results(id)
	var sum int64
	for _, o := range r["options"].([]any) {
		sum += int64(o.(map[string]any)["votes"].(float64))
	}
	if got := int64(r["total"].(float64)); got != accepted.Load() || sum != accepted.Load() || int64(r["voters"].(float64)) != accepted.Load() {
		t.Fatalf("results %v, want total, option sum and voters = %d", r, accepted.Load())
	}
}

// TestSameVoterRacingGetsOneVote: 50 concurrent votes of one voter on a
// device poll: exactly one 202.
func TestSameVoterRacingGetsOneVote(t *testing.T) {
	a := startApp(t)
	id := a.createPoll(map[string]any{"dedupe": "device"})["id"].(string)
	codes := make(chan int, 50)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			<-start
			req, _ := http.NewRequest("POST", a.url+"/v1/polls/"+id+"/votes", strings.NewReader(`{"options":["a"],"voter":"same-device"}`))
			resp, err := a.client.Do(req)
			if err != nil {
				codes <- 0
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		})
	}
	close(start)
	wg.Wait()
	close(codes)
	n := map[int]int{}
	for c := range codes {
		n[c]++
	}
	if n[202] != 1 || n[409] != 49 {
		t.Fatalf("statuses %v, want one 202 and 49 409s", n)
	}
	eventually(t, 2*time.Second, "one vote counted", func() bool { return a.total(id) == 1 })
	if r := a.results(id); r["total"] != float64(1) || r["voters"] != float64(1) {
		t.Fatalf("results %v", r)
	}
}

// TestViewersConverge: 200 viewers while votes stream in all see the final
// results within 1 s; a viewer that never reads delays nobody and is closed.
func TestViewersConverge(t *testing.T) {
	a := startApp(t, func(c *Config) {
		// Short enough to see the stuck viewer closed within the test, long
		// enough that a healthy viewer on a loaded machine answers in time.
		c.LivePingInterval = time.Second
		c.LivePingTimeout = 5 * time.Second
	})
	id := a.createPoll(map[string]any{"dedupe": "none"})["id"].(string)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	wsURL := "ws" + strings.TrimPrefix(a.url, "http") + "/v1/polls/" + id + "/live"

	// The viewer that never reads: a raw WebSocket handshake, then silence.
	stuck := dialStuckViewer(t, strings.TrimPrefix(a.url, "http://"), "/v1/polls/"+id+"/live")
	defer stuck.Close()

	const viewers = 200
	type last struct {
		mu  sync.Mutex
		msg map[string]any
		at  time.Time
	}
	lasts := make([]*last, viewers)
	conns := make([]*websocket.Conn, viewers)
	for i := range viewers {
		c, _, err := websocket.Dial(ctx, wsURL, nil)
		if err != nil {
			t.Fatalf("viewer %d: %v", i, err)
		}
		conns[i] = c
		lasts[i] = &last{}
		t.Cleanup(func() { c.CloseNow() })
	}
	var readers sync.WaitGroup
	for i, c := range conns {
		readers.Go(func() {
			for {
				_, data, err := c.Read(ctx)
				if err != nil {
					return
				}
				var m map[string]any
				if json.Unmarshal(data, &m) == nil && m["type"] == "results" {
					lasts[i].mu.Lock()
					lasts[i].msg, lasts[i].at = m, time.Now()
					lasts[i].mu.Unlock()
				}
			}
		})
	}

	// Votes stream in for a while from a few clients.
	var accepted atomic.Int64
	var voters sync.WaitGroup
	for w := range 8 {
		voters.Go(func() {
			for i := range 150 {
				body := fmt.Sprintf(`{"options":["%c"]}`, 'a'+(w+i)%3)
				resp, err := a.client.Post(a.url+"/v1/polls/"+id+"/votes", "application/json", strings.NewReader(body))
				if err != nil {
					continue
				}
				resp.Body.Close()
				if resp.StatusCode == 202 {
					accepted.Add(1)
				}
			}
		})
	}
	voters.Wait()
	lastVote := time.Now()
	final := accepted.Load()
	t.Logf("%d votes accepted while %d viewers watched", final, viewers)

	deadline := lastVote.Add(time.Second)
	for i := range viewers {
		for {
			lasts[i].mu.Lock()
			m, at := lasts[i].msg, lasts[i].at
			lasts[i].mu.Unlock()
			if m != nil && int64(m["total"].(float64)) == final {
				if at.After(deadline) {
					t.Fatalf("viewer %d saw the final results %v after the last vote", i, at.Sub(lastVote))
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("viewer %d: last results %v, want total %d within 1s of the last vote", i, m, final)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// Every viewer's last message is the final results: nothing else arrives.
	if got := a.total(id); got != final {
		t.Fatalf("total %d, want %d", got, final)
	}
	// The stuck viewer is closed, the others stay.
	eventually(t, 20*time.Second, "the stuck viewer closed", func() bool { return a.hub.Viewers() == viewers })
	for _, c := range conns {
		c.Close(websocket.StatusNormalClosure, "")
	}
	readers.Wait()
}

// dialStuckViewer does a WebSocket handshake by hand and then never reads.
func dialStuckViewer(t testing.TB, host, path string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	// A tiny receive buffer so the server's writes back up quickly.
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(1024)
	}
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", path, host)
	br := bufio.NewReader(c)
	status, err := br.ReadString('\n')
	if err != nil || !strings.Contains(status, "101") {
		t.Fatalf("handshake: %q %v", status, err)
	}
	return c
}

// TestLogDownAnswers503: when the log cannot take writes, votes get 503
// overloaded and readyz fails; nothing is answered 202.
func TestLogDownAnswers503(t *testing.T) {
	a := startApp(t)
	id := a.createPoll(map[string]any{"dedupe": "none"})["id"].(string)
	if r := a.do("GET", "/readyz", nil); r.Status != 200 {
		t.Fatalf("readyz before: %d %s", r.Status, r.Body)
	}
	if r := a.do("POST", "/v1/polls/"+id+"/votes", `{"options":["a"]}`); r.Status != 202 {
		t.Fatalf("vote before: %d %s", r.Status, r.Body)
	}
	a.emb.Shutdown()
	for i := range 20 {
		r := a.do("POST", "/v1/polls/"+id+"/votes", `{"options":["a"]}`)
		if r.Status != 503 || r.Code() != "overloaded" || r.Header.Get("Retry-After") == "" {
			t.Fatalf("vote %d with the log down: %d %s (Retry-After %q)", i, r.Status, r.Body, r.Header.Get("Retry-After"))
		}
	}
	if r := a.do("GET", "/readyz", nil); r.Status != 503 {
		t.Fatalf("readyz with the log down: %d %s", r.Status, r.Body)
	}
	if r := a.do("GET", "/healthz", nil); r.Status != 200 {
		t.Fatalf("healthz: %d", r.Status)
	}
}

// TestCrashAndRestartCountsEveryAcceptedVoteOnce: a pollcast process is
// killed with SIGKILL mid-load and restarted on the same data directory;
// clients retry unanswered votes with their idempotency keys. Every vote
// answered 202 is counted exactly once, and no other vote is.
func TestCrashAndRestartCountsEveryAcceptedVoteOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	dir := t.TempDir()
	addr := freeAddr(t)
	child := startChild(t, addr, dir)
	a := &app{t: t, url: "http://" + addr, client: &http.Client{Timeout: 10 * time.Second}}
	polls := map[string]string{}
	for _, policy := range []string{"device", "none"} {
		polls[policy] = a.createPoll(map[string]any{"dedupe": policy})["id"].(string)
	}

	// Each client casts its votes in order; a vote without a definite
	// answer is retried with the same idempotency key until it has one.
	const clients, perClient = 40, 50
	type outcome struct{ voteID, poll string }
	var mu sync.Mutex
	acceptedIDs := map[string]outcome{}
	var sent, retries atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for i := range perClient {
				policy := []string{"device", "none"}[i%2]
				body := fmt.Sprintf(`{"options":["a"],"voter":"c%d-v%d","idempotency_key":"c%d-k%d"}`, c, i, c, i)
				sent.Add(1)
				for attempt := 0; ; attempt++ {
					if ctx.Err() != nil {
						return
					}
					if attempt > 0 {
						retries.Add(1)
						time.Sleep(50 * time.Millisecond) // back off between retries, as a client would
					}
					resp, err := a.client.Post(a.url+"/v1/polls/"+polls[policy]+"/votes", "application/json", strings.NewReader(body))
					if err != nil {
						continue // no answer: the node is down; retry with the same key
					}
					var r struct {
						VoteID string `json:"vote_id"`
					}
					_ = json.NewDecoder(resp.Body).Decode(&r)
					resp.Body.Close()
					if resp.StatusCode == 202 {
						mu.Lock()
						if prev, ok := acceptedIDs[body]; ok && prev.voteID != r.VoteID {
							t.Errorf("retry of %s got vote_id %s, first %s", body, r.VoteID, prev.voteID)
						}
						acceptedIDs[body] = outcome{r.VoteID, policy}
						mu.Unlock()
						break
					}
					if resp.StatusCode != 503 && resp.StatusCode != 502 {
						t.Errorf("vote %s: status %d", body, resp.StatusCode)
						break
					}
				}
			}
		})
	}
	// Kill the process once a good part of the load is in.
	eventually(t, time.Minute, "load under way", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acceptedIDs) > clients*perClient/4
	})
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	mu.Lock()
	atKill := len(acceptedIDs)
	mu.Unlock()
	startChild(t, addr, dir)
	wg.Wait()
	if ctx.Err() != nil {
		t.Fatal("load did not finish")
	}
	want := map[string]int64{}
	for _, o := range acceptedIDs {
		want[o.poll]++
	}
	t.Logf("sent %d votes, %d accepted (%d before the kill), %d retries", sent.Load(), len(acceptedIDs), atKill, retries.Load())
	if len(acceptedIDs) != clients*perClient {
		t.Fatalf("%d votes accepted, want %d", len(acceptedIDs), clients*perClient)
	}
	for policy, id := range polls {
		eventually(t, 10*time.Second, policy+" poll total", func() bool { return a.total(id) >= want[policy] })
		if got := a.total(id); got != want[policy] {
			t.Fatalf("%s poll: total %d, want %d accepted", policy, got, want[policy])
		}
	}
	// The restarted node rebuilt its voter registry from the log: a device
	// that voted before the kill cannot vote again.
	if r := a.do("POST", "/v1/polls/"+polls["device"]+"/votes", map[string]any{"options": []string{"b"}, "voter": "c0-v0"}); r.Status != 409 || r.Code() != "already_voted" {
		t.Fatalf("second vote of a device after the restart: %d %s", r.Status, r.Body)
	}
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// startChild starts this test binary as `pollcast serve` and waits until
// it is ready.
func startChild(t testing.TB, addr, dir string, extra ...string) *exec.Cmd {
	t.Helper()
	args := append([]string{"serve", "--addr", addr, "--data", dir, "--vote-rate", "0", "--shards", "4", "--log-level", "warn"}, extra...)
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "POLLCAST_TEST_CHILD=1", "POLLCAST_ADMIN_KEY="+testAdminKey)
	cmd.Stdout = testWriter{t}
	cmd.Stderr = testWriter{t}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	eventually(t, time.Minute, "child ready", func() bool {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return cmd
}

// TestPackedVotesCountOnceAcrossRestart: a batch's keyless votes of a poll
// go to the log as one message (a pack). Every one of them is counted once
// in results, voters and analytics, also after a restart that rebuilds the
// tally and the voter registry from the log, where a voter of a pack
// cannot vote again.
func TestPackedVotesCountOnceAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	a := startApp(t, func(c *Config) { c.Data = dir })
	device := a.createPoll(map[string]any{"dedupe": "device"})["id"].(string)
	none := a.createPoll(map[string]any{"dedupe": "none"})["id"].(string)
	const n = 300
	var votes []map[string]any
	for i := range n {
		votes = append(votes,
			map[string]any{"poll_id": device, "options": []string{"a"}, "voter": fmt.Sprintf("d%d", i)},
			map[string]any{"poll_id": none, "options": []string{"b"}})
	}
	r := a.admin("POST", "/v1/votes/batch", map[string]any{"votes": votes})
	if r.Status != 200 {
		t.Fatalf("batch: %d %s", r.Status, r.Body)
	}
	for i, res := range r.JSON()["results"].([]any) {
		if res.(map[string]any)["status"] != float64(202) {
			t.Fatalf("vote %d: %v", i, res)
		}
	}
	check := func(a *app, when string) {
		t.Helper()
		for _, id := range []string{device, none} {
			eventually(t, 30*time.Second, when+": analytics caught up", func() bool { return len(csvRows(t, a, id)) == n+1 })
			res := a.results(id)
			if res["total"] != float64(n) {
				t.Fatalf("%s: poll %s total %v, want %d", when, id, res["total"], n)
			}
		}
		if v := a.results(device)["voters"]; v != float64(n) {
			t.Fatalf("%s: %v distinct voters, want %d", when, v, n)
		}
	}
	check(a, "before the restart")
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	b := startApp(t, func(c *Config) { c.Data = dir })
	check(b, "after the restart")
	if r := b.do("POST", "/v1/polls/"+device+"/votes", map[string]any{"options": []string{"b"}, "voter": "d7"}); r.Status != 409 || r.Code() != "already_voted" {
		t.Fatalf("a voter of a pack voted again after the restart: %d %s", r.Status, r.Body)
	}
}
