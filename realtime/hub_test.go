package realtime_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"

	"github.com/pollcast/pollcast/internal/testsvc"
	"github.com/pollcast/pollcast/poll"
	"github.com/pollcast/pollcast/realtime"
	"github.com/pollcast/pollcast/votelog"
)

type fixture struct {
	nc     *nats.Conn
	cat    *poll.Catalog
	hub    *realtime.Hub
	srv    *httptest.Server
	counts atomic.Pointer[poll.Counts] // what CountsFunc answers
	viewer realtime.Viewer             // how every connection is served
}

func newFixture(t *testing.T, cfg realtime.HubConfig) *fixture {
	t.Helper()
	l := testsvc.StartLog(t)
	nc, cat := l.NC, l.Catalog(t)
	var err error
	f := &fixture{nc: nc, cat: cat}
	f.hub, err = realtime.NewHub(nc, cat, func(_ context.Context, id string) (poll.Counts, error) {
		if c := f.counts.Load(); c != nil {
			return *c, nil
		}
		return poll.Counts{PollID: id, Options: map[string]int64{}}, nil
	}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/live/{id}", func(w http.ResponseWriter, r *http.Request) {
		f.hub.ServeWebSocket(w, r, r.PathValue("id"), f.viewer)
	})
	mux.HandleFunc("/events/{id}", func(w http.ResponseWriter, r *http.Request) {
		f.hub.ServeSSE(w, r, r.PathValue("id"), f.viewer)
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		f.hub.Close()
		f.srv.Close()
	})
	return f
}

func (f *fixture) newPoll(t *testing.T, in poll.CreateInput) *poll.Poll {
	t.Helper()
	if in.Question == "" {
		in.Question = "Q"
	}
	in.Options = []poll.OptionInput{{Label: "A"}, {Label: "B"}}
	p, err := poll.New(in, "owner", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := f.cat.CreatePoll(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	return p
}

// publish plays the tally: counts with total n, all on option a.
func (f *fixture) publish(t *testing.T, pollID string, n int64) {
	t.Helper()
	data, _ := json.Marshal(poll.Counts{PollID: pollID, Total: n, Voters: n, Version: n, Options: map[string]int64{"a": n}})
	if err := f.nc.Publish(votelog.ResultsSubject(pollID), data); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) dial(t *testing.T, pollID string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(f.srv.URL, "http")+"/live/"+pollID, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func read(t *testing.T, c *websocket.Conn, timeout time.Duration) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, data, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func readType(t *testing.T, c *websocket.Conn, typ string) map[string]any {
	t.Helper()
	for {
		if m := read(t, c, 5*time.Second); m["type"] == typ {
			return m
		}
	}
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testsvc.Eventually(t, 10*time.Second, what, cond)
}

func TestFirstMessageFollowsVisibility(t *testing.T) {
	f := newFixture(t, realtime.HubConfig{})
	always := f.newPoll(t, poll.CreateInput{})
	hidden := f.newPoll(t, poll.CreateInput{ResultsVisibility: poll.VisibleAfterClose})
	f.counts.Store(&poll.Counts{Total: 7, Version: 7, Options: map[string]int64{"b": 7}})

	m := read(t, f.dial(t, always.ID), 5*time.Second)
	if m["type"] != "results" || m["total"] != float64(7) || m["poll_id"] != always.ID || m["status"] != "open" {
		t.Fatalf("first message %v", m)
	}
	opts := m["options"].([]any)
	if len(opts) != 2 || opts[1].(map[string]any)["votes"] != float64(7) {
		t.Fatalf("options %v", opts)
	}
	if m := read(t, f.dial(t, hidden.ID), 5*time.Second); m["type"] != "hidden" || len(m) != 1 {
		t.Fatalf("hidden poll first message %v", m)
	}
	f.viewer = realtime.Viewer{Owner: true}
	if m := read(t, f.dial(t, hidden.ID), 5*time.Second); m["type"] != "results" {
		t.Fatalf("owner first message %v", m)
	}
}

func TestUpdatesAreConflatedAndConverge(t *testing.T) {
	f := newFixture(t, realtime.HubConfig{MinInterval: 100 * time.Millisecond})
	p := f.newPoll(t, poll.CreateInput{})
	c := f.dial(t, p.ID)
	read(t, c, 5*time.Second) // initial state
	start := time.Now()
	const updates = 1000
	for i := int64(1); i <= updates; i++ {
		f.publish(t, p.ID, i)
	}
	if err := f.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	published := time.Now()
	got := 0
	for {
		m := read(t, c, 2*time.Second)
		got++
		if m["total"] == float64(updates) {
			break
		}
	}
	if since := time.Since(published); since > time.Second {
		t.Fatalf("final results arrived %v after the last update", since)
	}
	// At most one message per 100 ms, plus the first one right away.
	if limit := int(time.Since(start)/(100*time.Millisecond)) + 2; got > limit {
		t.Fatalf("%d messages for %d updates in %v: not conflated (limit %d)", got, updates, time.Since(start), limit)
	}
	t.Logf("%d updates reached the viewer as %d messages", updates, got)
}

func TestStuckViewerIsClosedWithoutDelayingOthers(t *testing.T) {
	f := newFixture(t, realtime.HubConfig{PingInterval: 200 * time.Millisecond, PingTimeout: time.Second, MinInterval: 10 * time.Millisecond})
	p := f.newPoll(t, poll.CreateInput{})
	host := strings.TrimPrefix(f.srv.URL, "http://")
	raw, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	fmt.Fprintf(raw, "GET /live/%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", p.ID, host)
	if status, _ := bufio.NewReader(raw).ReadString('\n'); !strings.Contains(status, "101") {
		t.Fatalf("handshake %q", status)
	}
	// Healthy viewers read all the time (and so answer pings).
	var others []chan map[string]any
	for range 3 {
		c := f.dial(t, p.ID)
		ch := make(chan map[string]any, 1000)
		go func() {
			defer close(ch)
			for {
				_, data, err := c.Read(context.Background())
				if err != nil {
					return
				}
				var m map[string]any
				_ = json.Unmarshal(data, &m)
				ch <- m
			}
		}()
		others = append(others, ch)
	}
	waitFor(t, "4 viewers", func() bool { return f.hub.Viewers() == 4 })
	for i := int64(1); i <= 50; i++ {
		f.publish(t, p.ID, i)
	}
	until := func(ch chan map[string]any, total float64) {
		t.Helper()
		timeout := time.After(time.Second)
		for {
			select {
			case m, ok := <-ch:
				if !ok {
					t.Fatal("a healthy viewer was closed")
				}
				if m["total"] == total {
					return
				}
			case <-timeout:
				t.Fatalf("no results with total %v within 1s", total)
			}
		}
	}
	for _, ch := range others {
		until(ch, 50)
	}
	waitFor(t, "the stuck viewer closed", func() bool { return f.hub.Viewers() == 3 })
	// The healthy viewers answered their pings and are still served.
	f.publish(t, p.ID, 51)
	for _, ch := range others {
		until(ch, 51)
	}
}

func TestVotesOnTheSocket(t *testing.T) {
	f := newFixture(t, realtime.HubConfig{})
	p := f.newPoll(t, poll.CreateInput{ResultsVisibility: poll.VisibleAfterVote})
	var votes atomic.Int32
	f.viewer = realtime.Viewer{Vote: func(_ context.Context, m realtime.VoteMessage) realtime.VoteReply {
		votes.Add(1)
		if m.Options[0] != "a" {
			return realtime.VoteReply{Status: 422, Code: "invalid_option", Detail: "no such option"}
		}
		return realtime.VoteReply{Status: 202, VoteID: "vote-1"}
	}}
	c := f.dial(t, p.ID)
	ctx := context.Background()
	if m := read(t, c, 5*time.Second); m["type"] != "hidden" {
		t.Fatalf("after_vote poll before voting: %v", m)
	}
	for _, garbage := range []string{"{", `{"type":"vote","options":7}`, `{"type":"hello"}`} {
		_ = c.Write(ctx, websocket.MessageText, []byte(garbage))
		if m := read(t, c, 5*time.Second); m["type"] != "error" || m["code"] != "bad_request" {
			t.Fatalf("garbage %q: %v", garbage, m)
		}
	}
	_ = c.Write(ctx, websocket.MessageBinary, []byte{1, 2, 3})
	if m := read(t, c, 5*time.Second); m["type"] != "error" {
		t.Fatalf("binary frame: %v", m)
	}
	_ = c.Write(ctx, websocket.MessageText, []byte(`{"type":"vote","ref":"r1","options":["z"]}`))
	if m := read(t, c, 5*time.Second); m["type"] != "vote_result" || m["ref"] != "r1" || m["status"] != float64(422) || m["code"] != "invalid_option" {
		t.Fatalf("refused vote: %v", m)
	}
	_ = c.Write(ctx, websocket.MessageText, []byte(`{"type":"vote","ref":"r2","options":["a"],"voter":"d"}`))
	if m := read(t, c, 5*time.Second); m["ref"] != "r2" || m["status"] != float64(202) || m["vote_id"] != "vote-1" {
		t.Fatalf("accepted vote: %v", m)
	}
	if m := read(t, c, 5*time.Second); m["type"] != "results" {
		t.Fatalf("after voting on an after_vote poll: %v", m)
	}
	if votes.Load() != 2 {
		t.Fatalf("%d votes reached the vote function", votes.Load())
	}
	// A message over the limit closes the socket.
	_ = c.Write(ctx, websocket.MessageText, []byte(`{"type":"vote","voter":"`+strings.Repeat("x", 5000)+`"}`))
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, _, err := c.Read(rctx); websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
		t.Fatalf("oversized message: %v", err)
	}
}

func TestPollChangesReachViewers(t *testing.T) {
	f := newFixture(t, realtime.HubConfig{})
	p := f.newPoll(t, poll.CreateInput{ResultsVisibility: poll.VisibleAfterClose})
	c := f.dial(t, p.ID)
	read(t, c, 5*time.Second)
	ctx := context.Background()
	if _, err := f.cat.UpdatePoll(ctx, p.ID, func(p *poll.Poll) (*poll.Poll, error) {
		p.ClosedByHand = true
		return p, nil
	}); err != nil {
		t.Fatal(err)
	}
	if m := readType(t, c, "poll"); m["status"] != "closed" || m["voter_secret"] != nil || m["id"] != p.ID {
		t.Fatalf("poll message %v", m)
	}
	if m := readType(t, c, "results"); m["status"] != "closed" {
		t.Fatalf("results once closed: %v", m)
	}
	// Closing by the clock.
	soon := f.newPoll(t, poll.CreateInput{})
	if _, err := f.cat.UpdatePoll(ctx, soon.ID, func(p *poll.Poll) (*poll.Poll, error) {
		at := time.Now().Add(300 * time.Millisecond)
		p.ClosesAt = &at
		return p, nil
	}); err != nil {
		t.Fatal(err)
	}
	c2 := f.dial(t, soon.ID)
	read(t, c2, 5*time.Second)
	for {
		if m := readType(t, c2, "poll"); m["status"] == "closed" {
			break
		}
	}
	// Deleting closes the socket normally.
	if _, err := f.cat.UpdatePoll(ctx, p.ID, func(p *poll.Poll) (*poll.Poll, error) {
		now := time.Now()
		p.DeletedAt = &now
		return p, nil
	}); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for {
		_, _, err := c.Read(rctx)
		if err != nil {
			if websocket.CloseStatus(err) != websocket.StatusNormalClosure {
				t.Fatalf("deleted poll: %v", err)
			}
			break
		}
	}
}

func TestServerSentEvents(t *testing.T) {
	f := newFixture(t, realtime.HubConfig{})
	p := f.newPoll(t, poll.CreateInput{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", f.srv.URL+"/events/"+p.ID, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	next := func() (string, map[string]any) {
		event := ""
		for sc.Scan() {
			line := sc.Text()
			if v, ok := strings.CutPrefix(line, "event: "); ok {
				event = v
			}
			if v, ok := strings.CutPrefix(line, "data: "); ok {
				var m map[string]any
				if err := json.Unmarshal([]byte(v), &m); err != nil {
					t.Fatal(err)
				}
				return event, m
			}
		}
		t.Fatalf("stream ended: %v", sc.Err())
		return "", nil
	}
	if ev, m := next(); ev != "results" || m["type"] != "results" || m["total"] != float64(0) {
		t.Fatalf("first event %s %v", ev, m)
	}
	f.publish(t, p.ID, 3)
	if ev, m := next(); ev != "results" || m["total"] != float64(3) {
		t.Fatalf("update %s %v", ev, m)
	}
	waitFor(t, "one viewer", func() bool { return f.hub.Viewers() == 1 })
	cancel()
	waitFor(t, "the viewer gone", func() bool { return f.hub.Viewers() == 0 })
}

func TestCloseEndsEveryConnection(t *testing.T) {
	f := newFixture(t, realtime.HubConfig{})
	p := f.newPoll(t, poll.CreateInput{})
	conns := []*websocket.Conn{f.dial(t, p.ID), f.dial(t, p.ID)}
	for _, c := range conns {
		read(t, c, 5*time.Second)
		go func() { // keep reading so the closing handshake completes
			for {
				if _, _, err := c.Read(context.Background()); err != nil {
					return
				}
			}
		}()
	}
	waitFor(t, "two viewers", func() bool { return f.hub.Viewers() == 2 })
	done := make(chan struct{})
	go func() { f.hub.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	if n := f.hub.Viewers(); n != 0 {
		t.Fatalf("%d viewers after Close", n)
	}
}
