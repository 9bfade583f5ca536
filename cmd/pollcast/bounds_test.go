package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// trickle sends a request's head at once and then its body one byte every
// gap, until the body is sent, the connection fails or stop is closed.
func trickle(t testing.TB, conn net.Conn, head, body string, gap time.Duration, stop <-chan struct{}) *sync.WaitGroup {
	t.Helper()
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatalf("write head: %v", err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(gap)
		defer tick.Stop()
		for i := range len(body) {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if _, err := conn.Write([]byte{body[i]}); err != nil {
				return // the server closed the connection
			}
		}
	})
	return &wg
}

// TestTrickledBodyIsCutOff: a client that sends a request's headers and
// then its body a byte at a time is answered 408 request_timeout within the
// body deadline, its connection is closed, and its vote is not stored.
func TestTrickledBodyIsCutOff(t *testing.T) {
	const bound = time.Second
	a := startApp(t, func(c *Config) { c.BodyReadTimeout = bound })
	id := a.createPoll(nil)["id"].(string)
	body := `{"options":["a"],"voter":"trickler"}`
	for _, tc := range []struct {
		name string
		head string
		body string
	}{
		{"content-length", "POST /v1/polls/" + id + "/votes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" +
			fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body)), body},
		{"chunked", "POST /v1/polls/" + id + "/votes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
			fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(body), body)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", a.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			stop := make(chan struct{})
			start := time.Now()
			wg := trickle(t, conn, tc.head, tc.body, 200*time.Millisecond, stop)
			defer wg.Wait()
			defer close(stop)

			// Without the deadline the trickle would take 7 s or more
			// and then be stored: the answer must come well before.
			_ = conn.SetReadDeadline(time.Now().Add(bound + 4*time.Second))
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("no answer within %v: %v", bound+4*time.Second, err)
			}
			took := time.Since(start)
			var p struct{ Code string }
			_ = json.NewDecoder(resp.Body).Decode(&p)
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestTimeout || p.Code != "request_timeout" {
				t.Fatalf("answer %d %q, want 408 request_timeout", resp.StatusCode, p.Code)
			}
			if took < bound || took > bound+3*time.Second {
				t.Fatalf("answered after %v, want about %v", took, bound)
			}
			if _, err := br.ReadByte(); !errors.Is(err, io.EOF) && !isReset(err) {
				t.Fatalf("connection still open after the 408: %v", err)
			}
		})
	}

	// A vote sent properly afterwards is counted; once it is, the total
	// shows that the trickled votes never were.
	if r := a.do("POST", "/v1/polls/"+id+"/votes", `{"options":["b"],"voter":"prompt"}`); r.Status != http.StatusAccepted {
		t.Fatalf("vote: %d %s", r.Status, r.Body)
	}
	eventually(t, 10*time.Second, "the prompt vote counted", func() bool { return a.total(id) >= 1 })
	if got := a.results(id); got["total"].(float64) != 1 {
		t.Fatalf("results %v, want only the prompt vote", got)
	}
}

// TestBodyDeadlineLeavesConnectionsAlone: the body deadline is cleared once
// a body is read, so a kept-alive connection idle for longer than it still
// serves its next request, and a live stream outlives it.
func TestBodyDeadlineLeavesConnectionsAlone(t *testing.T) {
	const bound = 300 * time.Millisecond
	a := startApp(t, func(c *Config) { c.BodyReadTimeout = bound })
	id := a.createPoll(nil)["id"].(string)

	conn, err := net.Dial("tcp", a.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	send := func(voter string) int {
		t.Helper()
		body := `{"options":["a"],"voter":"` + voter + `"}`
		fmt.Fprintf(conn, "POST /v1/polls/%s/votes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", id, len(body), body)
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("vote %s: %v", voter, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := send("first"); st != http.StatusAccepted {
		t.Fatalf("first vote: %d", st)
	}
	// An SSE stream opened now must still carry the results of a vote
	// sent after several body deadlines have passed.
	events, err := http.Get(a.url + "/v1/polls/" + id + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer events.Body.Close()
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(events.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	<-time.After(4 * bound) // the scenario itself: the connection idles past several body deadlines
	if st := send("second"); st != http.StatusAccepted {
		t.Fatalf("vote on the kept-alive connection after idling: %d", st)
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("the event stream ended")
			}
			if strings.HasPrefix(l, "data: ") && strings.Contains(l, `"total":2`) {
				return
			}
		case <-deadline:
			t.Fatal("the event stream did not carry the second vote")
		}
	}
}

// liveRefusal is the answer to a live connection that was not opened.
type liveRefusal struct {
	status     int
	code       string
	retryAfter string
}

// openLive opens a live connection of kind "ws" or "sse" to the poll as the
// client at addr, which the trusted proxy in front (the test) names in
// X-Forwarded-For. It returns a function closing the connection once the
// server has answered the upgrade or started the stream, or the refusal.
func openLive(t testing.TB, a *app, kind, id, addr string) (func(), *liveRefusal) {
	t.Helper()
	hdr := http.Header{"X-Forwarded-For": {addr}}
	ctx, cancel := context.WithCancel(context.Background())
	refusal := func(resp *http.Response) *liveRefusal {
		cancel()
		var p struct{ Code string }
		_ = json.NewDecoder(resp.Body).Decode(&p)
		return &liveRefusal{status: resp.StatusCode, code: p.Code, retryAfter: resp.Header.Get("Retry-After")}
	}
	switch kind {
	case "ws":
		dialCtx, stop := context.WithTimeout(ctx, 10*time.Second)
		defer stop()
		c, resp, err := websocket.Dial(dialCtx, "ws://"+a.Addr()+"/v1/polls/"+id+"/live", &websocket.DialOptions{HTTPHeader: hdr})
		if err != nil {
			if resp == nil || resp.StatusCode == http.StatusSwitchingProtocols {
				t.Fatalf("dial %s as %s: %v", kind, addr, err)
			}
			return nil, refusal(resp)
		}
		readWS(dialCtx, t, c) // the first results: the viewer has joined
		return func() { c.Close(websocket.StatusNormalClosure, ""); cancel() }, nil
	case "sse":
		req, err := http.NewRequestWithContext(ctx, "GET", a.url+"/v1/polls/"+id+"/events", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header = hdr
		resp, err := a.client.Do(req)
		if err != nil {
			t.Fatalf("open %s as %s: %v", kind, addr, err)
		}
		if resp.StatusCode != http.StatusOK {
			defer resp.Body.Close()
			return nil, refusal(resp)
		}
		return func() { cancel(); resp.Body.Close() }, nil
	}
	t.Fatalf("unknown live kind %q", kind)
	return nil, nil
}

// TestLiveConnectionsCappedPerAddress: with the cap at 3, a client address
// (after trusted proxies) holds three live connections, WebSocket and SSE
// together; a fourth of either kind gets 429 rate_limited with Retry-After
// before any upgrade; closing one lets a new one in; other addresses are
// not affected; IPv6 addresses count by their /64.
func TestLiveConnectionsCappedPerAddress(t *testing.T) {
	a := startApp(t, func(c *Config) {
		c.MaxLivePerIP = 3
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	})
	id := a.createPoll(nil)["id"].(string)
	open := func(kind, addr string) func() {
		t.Helper()
		closeFn, refused := openLive(t, a, kind, id, addr)
		if refused != nil {
			t.Fatalf("%s as %s refused: %+v", kind, addr, *refused)
		}
		t.Cleanup(closeFn)
		return closeFn
	}
	refuse := func(kind, addr string) {
		t.Helper()
		closeFn, refused := openLive(t, a, kind, id, addr)
		if refused == nil {
			closeFn()
			t.Fatalf("%s as %s was let in over the cap", kind, addr)
		}
		if refused.status != http.StatusTooManyRequests || refused.code != "rate_limited" || refused.retryAfter == "" {
			t.Fatalf("%s as %s: %+v, want 429 rate_limited with Retry-After", kind, addr, *refused)
		}
	}
	// openOnceFreed opens a connection as addr as soon as a slot is free:
	// the server frees it when it notices the closed connection.
	openOnceFreed := func(kind, addr string) func() {
		t.Helper()
		var closeFn func()
		eventually(t, 10*time.Second, kind+" let in after a close", func() bool {
			var refused *liveRefusal
			closeFn, refused = openLive(t, a, kind, id, addr)
			return refused == nil
		})
		t.Cleanup(closeFn)
		return closeFn
	}

	const hall = "203.0.113.7"
	ws1 := open("ws", hall)
	sse1 := open("sse", hall)
	open("ws", hall)
	refuse("ws", hall)
	refuse("sse", hall)

	open("ws", "203.0.113.8") // another address is not affected
	open("sse", "198.51.100.1")

	sse1()
	ws3 := openOnceFreed("ws", hall)
	refuse("sse", hall)
	ws1()
	openOnceFreed("sse", hall)
	refuse("ws", hall)
	ws3()
	openOnceFreed("ws", hall)

	// IPv6: the addresses of one /64 share its three slots.
	open("ws", "2001:db8:1:2::1")
	open("sse", "2001:db8:1:2::2")
	open("ws", "2001:db8:1:2:aaaa::3")
	refuse("ws", "2001:db8:1:2:ffff::4")
	refuse("sse", "2001:db8:1:2::5")
	open("ws", "2001:db8:1:3::1")
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && strings.Contains(op.Err.Error(), "reset")
}
