package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
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

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && strings.Contains(op.Err.Error(), "reset")
}
