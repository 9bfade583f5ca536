package realtime_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pollcast/pollcast/internal/testsvc"
	"github.com/pollcast/pollcast/poll"
	"github.com/pollcast/pollcast/realtime"
	"github.com/pollcast/pollcast/votelog"
)

type fixture struct {
	nc       *nats.Conn
	cat      *poll.Catalog
	hub      *realtime.Hub
	srv      *httptest.Server
	counts   atomic.Pointer[poll.Counts] // what CountsFunc answers
	storeErr atomic.Pointer[error]       // what CountsFunc fails with, if set
	viewer   realtime.Viewer             // how every connection is served
	handlers sync.WaitGroup              // live handlers running
	running  atomic.Int32
}

func newFixture(t *testing.T, cfg realtime.HubConfig) *fixture {
	t.Helper()
	l := testsvc.StartLog(t)
	nc, cat := l.NC, l.Catalog(t)
	var err error
	f := &fixture{nc: nc, cat: cat}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	}
	f.hub, err = realtime.NewHub(nc, cat, func(_ context.Context, id string) (poll.Counts, error) {
		if err := f.storeErr.Load(); err != nil {
			return poll.Counts{}, *err
		}
		if c := f.counts.Load(); c != nil {
			return *c, nil
		}
		return poll.Counts{PollID: id, Options: map[string]int64{}}, nil
	}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	track := func(serve func(http.ResponseWriter, *http.Request, string, realtime.Viewer)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			f.handlers.Add(1)
			f.running.Add(1)
			defer f.handlers.Done()
			defer f.running.Add(-1)
			serve(w, r, r.PathValue("id"), f.viewer)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/live/{id}", track(f.hub.ServeWebSocket))
	mux.HandleFunc("/events/{id}", track(f.hub.ServeSSE))
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

func (f *fixture) update(t *testing.T, id string, fn func(p *poll.Poll)) {
	t.Helper()
	if _, err := f.cat.UpdatePoll(context.Background(), id, func(p *poll.Poll) (*poll.Poll, error) {
		fn(p)
		return p, nil
	}); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) poll(t *testing.T, id string) *poll.Poll {
	t.Helper()
	p, ok := f.cat.Poll(id)
	if !ok {
		t.Fatalf("poll %s not in the catalog", id)
	}
	return p
}

// publish plays the tally: counts with total n, all on option a.
func (f *fixture) publish(t testing.TB, pollID string, n int64) {
	t.Helper()
	data, _ := json.Marshal(poll.Counts{PollID: pollID, Total: n, Voters: n, Version: n, Options: map[string]int64{"a": n}})
	if err := f.nc.Publish(votelog.ResultsSubject(pollID), data); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) flush(t testing.TB) {
	t.Helper()
	if err := f.nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) wsURL(pollID string) string {
	return "ws" + strings.TrimPrefix(f.srv.URL, "http") + "/live/" + pollID
}

func (f *fixture) dial(t testing.TB, pollID string) *websocket.Conn {
	t.Helper()
	return f.dialWith(t, pollID, nil)
}

func (f *fixture) dialWith(t testing.TB, pollID string, opts *websocket.DialOptions) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, f.wsURL(pollID), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func read(t testing.TB, c *websocket.Conn, timeout time.Duration) map[string]any {
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

func readType(t testing.TB, c *websocket.Conn, typ string) map[string]any {
	t.Helper()
	for {
		if m := read(t, c, 5*time.Second); m["type"] == typ {
			return m
		}
	}
}

func send(t testing.TB, c *websocket.Conn, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatal(err)
	}
}

// readUntilClosed reads until the server closes c and returns the error.
func readUntilClosed(t testing.TB, c *websocket.Conn) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		if _, _, err := c.Read(ctx); err != nil {
			if ctx.Err() != nil {
				t.Fatal("the connection was not closed")
			}
			return err
		}
	}
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testsvc.Eventually(t, 10*time.Second, what, cond)
}

// follower reads a socket in the background and keeps the newest message.
type follower struct {
	last   atomic.Pointer[map[string]any]
	n      atomic.Int64
	closed atomic.Bool
}

func follow(c *websocket.Conn) *follower {
	fl := &follower{}
	go func() {
		defer fl.closed.Store(true)
		for {
			_, data, err := c.Read(context.Background())
			if err != nil {
				return
			}
			var m map[string]any
			_ = json.Unmarshal(data, &m)
			fl.last.Store(&m)
			fl.n.Add(1)
		}
	}()
	return fl
}

func (fl *follower) total() any {
	if m := fl.last.Load(); m != nil {
		return (*m)["total"]
	}
	return nil
}

func TestFirstMessageFollowsVisibility(t *testing.T) {
	f := newFixture(t, realtime.HubConfig{})
	always := f.newPoll(t, poll.CreateInput{})
	afterClose := f.newPoll(t, poll.CreateInput{ResultsVisibility: poll.VisibleAfterClose})
	owner := f.newPoll(t, poll.CreateInput{ResultsVisibility: poll.VisibleOwner})
	afterVote := f.newPoll(t, poll.CreateInput{ResultsVisibility: poll.VisibleAfterVote})
	f.counts.Store(&poll.Counts{Total: 7, Version: 7, Options: map[string]int64{"b": 7}})

	m := read(t, f.dial(t, always.ID), 5*time.Second)
	if m["type"] != "results" || m["total"] != float64(7) || m["poll_id"] != always.ID || m["status"] != "open" || m["version"] != float64(7) {
		t.Fatalf("first message %v", m)
	}
	opts := m["options"].([]any)
	if len(opts) != 2 || opts[0].(map[string]any)["votes"] != float64(0) || opts[1].(map[string]any)["votes"] != float64(7) {
		t.Fatalf("options %v", opts)
	}
	for _, p := range []*poll.Poll{afterClose, owner, afterVote} {
		if m := read(t, f.dial(t, p.ID), 5*time.Second); m["type"] != "hidden" || len(m) != 1 {
			t.Fatalf("%s poll, first message %v", p.ResultsVisibility, m)
		}
	}
	f.viewer = realtime.Viewer{Voted: true}
	if m := read(t, f.dial(t, afterVote.ID), 5*time.Second); m["type"] != "results" {
		t.Fatalf("after_vote poll, a viewer who voted: %v", m)
	}
	f.viewer = realtime.Viewer{Owner: true}
	for _, p := range []*poll.Poll{afterClose, owner} {
		if m := read(t, f.dial(t, p.ID), 5*time.Second); m["type"] != "results" {
			t.Fatalf("%s poll, owner's first message %v", p.ResultsVisibility, m)
		}
	}
}

func TestUpdatesAreConflatedAndConverge(t *testing.T) {
	const interval = 100 * time.Millisecond
	f := newFixture(t, realtime.HubConfig{MinInterval: interval})
	p := f.newPoll(t, poll.CreateInput{})

	// A burst, then a steady stream lasting several intervals.
	for _, tc := range []struct {
		name  string
		until func(i int64, start time.Time) bool
	}{
		{"burst of 1000", func(i int64, _ time.Time) bool { return i < 1000 }},
		{"stream for 600ms", func(_ int64, start time.Time) bool { return time.Since(start) < 600*time.Millisecond }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := f.dial(t, p.ID)
			first := read(t, c, 5*time.Second) // initial state
			base := int64(first["total"].(float64))
			start := time.Now()
			i := int64(0)
			for tc.until(i, start) {
				i++
				f.publish(t, p.ID, base+i)
				if i%20 == 0 {
					f.flush(t) // keep the stream steady rather than one buffered burst
				}
			}
			final := base + i
			f.flush(t)
			published := time.Now()
			got := 0
			for {
				m := read(t, c, 2*time.Second)
				got++
				if m["total"] == float64(final) {
					break
				}
			}
			if since := time.Since(published); since > time.Second {
				t.Fatalf("final results arrived %v after the last update", since)
			}
			// At most one message per interval, plus one right away and one for the tail.
			if limit := int(time.Since(start)/interval) + 2; got > limit {
				t.Fatalf("%d messages for %d updates in %v: not conflated (limit %d)", got, i, time.Since(start), limit)
			}
			t.Logf("%d updates in %v reached the viewer as %d messages", i, published.Sub(start), got)
		})
	}
}

// metric returns the value of the gauge or counter called name.
func metric(t testing.TB, reg prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			return m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// rawClient is a WebSocket client that did the handshake and then reads
// nothing: it never answers pings and lets the server's frames pile up.
type rawClient struct {
	conn net.Conn
	br   *bufio.Reader
}

func dialRaw(t testing.TB, f *fixture, pollID string) *rawClient {
	t.Helper()
	host := strings.TrimPrefix(f.srv.URL, "http://")
	conn, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "GET /live/%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", pollID, host)
	br := bufio.NewReader(conn)
	status, err := br.ReadString('\n')
	if err != nil || !strings.Contains(status, " 101 ") {
		t.Fatalf("handshake %q: %v", status, err)
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "\r\n" {
			return &rawClient{conn: conn, br: br}
		}
	}
}

// closeStatus reads the frames the server sent until its close frame and
// returns the close status and how many text messages came before.
func (rc *rawClient) closeStatus(t testing.TB) (code websocket.StatusCode, texts int) {
	t.Helper()
	_ = rc.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		var h [2]byte
		if _, err := io.ReadFull(rc.br, h[:]); err != nil {
			t.Fatalf("no close frame: %v", err)
		}
		n := uint64(h[1] & 0x7f) // server frames are not masked
		switch n {
		case 126:
			var b [2]byte
			_, _ = io.ReadFull(rc.br, b[:])
			n = uint64(binary.BigEndian.Uint16(b[:]))
		case 127:
			var b [8]byte
			_, _ = io.ReadFull(rc.br, b[:])
			n = binary.BigEndian.Uint64(b[:])
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(rc.br, payload); err != nil {
			t.Fatal(err)
		}
		switch h[0] & 0x0f {
		case 0x1: // text
			texts++
		case 0x8: // close
			if len(payload) < 2 {
				t.Fatalf("close frame without status: %q", payload)
			}
			return websocket.StatusCode(binary.BigEndian.Uint16(payload)), texts
		}
	}
}

func TestManyViewersConvergeDespiteAStuckOne(t *testing.T) {
	const viewers = 200
	reg := prometheus.NewPedanticRegistry()
	f := newFixture(t, realtime.HubConfig{
		PingInterval: 250 * time.Millisecond, PingTimeout: 3 * time.Second,
		MinInterval: 20 * time.Millisecond, Registerer: reg,
	})
	p := f.newPoll(t, poll.CreateInput{})
	followers := make([]*follower, viewers)
	for i := range followers {
		followers[i] = follow(f.dial(t, p.ID))
	}
	waitFor(t, "every viewer connected", func() bool { return f.hub.Viewers() == viewers })
	stuck := dialRaw(t, f, p.ID)
	waitFor(t, "the stuck viewer connected", func() bool { return f.hub.Viewers() == viewers+1 })
	if got := metric(t, reg, "pollcast_realtime_viewers"); got != viewers+1 {
		t.Fatalf("viewers gauge %v", got)
	}

	converged := func(final int64) {
		t.Helper()
		f.flush(t)
		published := time.Now()
		for {
			behind := 0
			for _, fl := range followers {
				if fl.closed.Load() {
					t.Fatal("a healthy viewer was closed")
				}
				if fl.total() != float64(final) {
					behind++
				}
			}
			if behind == 0 {
				t.Logf("%d viewers saw total %d within %v", viewers, final, time.Since(published))
				return
			}
			if time.Since(published) > time.Second {
				t.Fatalf("%d of %d viewers do not show the final results 1s after the last update", behind, viewers)
			}
			time.Sleep(2 * time.Millisecond) // polling a condition under a deadline
		}
	}
	const updates = 300
	for i := int64(1); i <= updates; i++ {
		f.publish(t, p.ID, i)
		if i%30 == 0 {
			f.flush(t)
		}
	}
	converged(updates)
	var msgs int64
	for _, fl := range followers {
		msgs += fl.n.Load()
	}
	if perViewer := msgs / viewers; perViewer >= updates/2 {
		t.Fatalf("%d messages per viewer for %d updates: not conflated", perViewer, updates)
	}

	// The stuck viewer misses its pongs and is closed with a policy violation.
	waitFor(t, "the stuck viewer closed", func() bool { return f.hub.Viewers() == viewers })
	if code, texts := stuck.closeStatus(t); code != websocket.StatusPolicyViolation || texts < 2 {
		t.Fatalf("stuck viewer closed with %v after %d messages", code, texts)
	}
	if got := metric(t, reg, "pollcast_realtime_slow_viewers_closed_total"); got != 1 {
		t.Fatalf("slow viewers closed: %v", got)
	}
	if got := metric(t, reg, "pollcast_realtime_messages_sent_total"); got < viewers*2 {
		t.Fatalf("messages sent: %v", got)
	}
	// The healthy viewers answered their pings all along and are still served.
	f.publish(t, p.ID, updates+1)
	converged(updates + 1)
}

func TestVotesOnTheSocket(t *testing.T) {
	f := newFixture(t, realtime.HubConfig{})
	p := f.newPoll(t, poll.CreateInput{ResultsVisibility: poll.VisibleAfterVote})
	var votes atomic.Int32
	f.viewer = realtime.Viewer{Vote: func(_ context.Context, m realtime.VoteMessage) realtime.VoteReply {
		votes.Add(1)
		if len(m.Options) != 1 || m.Options[0] != "a" {
			return realtime.VoteReply{Status: 422, Code: "invalid_option", Detail: "no such option"}
		}
		if m.Voter != "d" || m.IdempotencyKey != "k" {
			return realtime.VoteReply{Status: 400, Code: "bad_request", Detail: "voter and key not passed on"}
		}
		return realtime.VoteReply{Status: 202, VoteID: "vote-1"}
	}}
	c := f.dial(t, p.ID)
	ctx := context.Background()
	if m := read(t, c, 5*time.Second); m["type"] != "hidden" {
		t.Fatalf("after_vote poll before voting: %v", m)
	}
	for _, garbage := range []string{"{", "null x", `{"type":"vote","options":7}`, `{"type":"hello"}`, `[1,2]`} {
		send(t, c, garbage)
		if m := read(t, c, 5*time.Second); m["type"] != "error" || m["code"] != "bad_request" || m["detail"] == "" {
			t.Fatalf("garbage %q: %v", garbage, m)
		}
	}
	_ = c.Write(ctx, websocket.MessageBinary, []byte{1, 2, 3})
	if m := read(t, c, 5*time.Second); m["type"] != "error" {
		t.Fatalf("binary frame: %v", m)
	}
	send(t, c, `{"type":"vote","ref":"r1","options":["z"]}`)
	if m := read(t, c, 5*time.Second); m["type"] != "vote_result" || m["ref"] != "r1" || m["status"] != float64(422) || m["code"] != "invalid_option" {
		t.Fatalf("refused vote: %v", m)
	}
	send(t, c, `{"type":"vote","ref":"r2","options":["a"],"voter":"d","idempotency_key":"k"}`)
	if m := read(t, c, 5*time.Second); m["ref"] != "r2" || m["status"] != float64(202) || m["vote_id"] != "vote-1" {
		t.Fatalf("accepted vote: %v", m)
	}
	if m := read(t, c, 5*time.Second); m["type"] != "results" {
		t.Fatalf("after voting on an after_vote poll: %v", m)
	}
	f.publish(t, p.ID, 4)
	if m := read(t, c, 5*time.Second); m["type"] != "results" || m["total"] != float64(4) {
		t.Fatalf("update after voting: %v", m)
	}
	if votes.Load() != 2 {
		t.Fatalf("%d votes reached the vote function", votes.Load())
	}
	// A message over the limit closes the socket.
	_ = c.Write(ctx, websocket.MessageText, []byte(`{"type":"vote","voter":"`+strings.Repeat("x", 5000)+`"}`))
	if err := readUntilClosed(t, c); websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
		t.Fatalf("oversized message: %v", err)
	}

	// Without a vote function, votes are refused, with their ref.
	f.viewer = realtime.Viewer{}
	c = f.dial(t, p.ID)
	read(t, c, 5*time.Second)
	send(t, c, `{"type":"vote","ref":"x","options":["a"]}`)
	if m := read(t, c, 5*time.Second); m["type"] != "vote_result" || m["ref"] != "x" || m["status"] != float64(403) || m["code"] != "forbidden" {
		t.Fatalf("vote on a read-only socket: %v", m)
	}
}

// heldVote is a vote function that counts its calls and answers 202 once
// release is closed (or the connection ends).
func heldVote(release <-chan struct{}, calls *atomic.Int32) func(context.Context, realtime.VoteMessage) realtime.VoteReply {
	return func(ctx context.Context, m realtime.VoteMessage) realtime.VoteReply {
		calls.Add(1)
		select {
		case <-release:
		case <-ctx.Done():
		}
		return realtime.VoteReply{Status: 202, VoteID: "v-" + m.Ref}
	}
}

func TestSlowVotesDoNotBlockTheSocket(t *testing.T) {
	f := newFixture(t, realtime.HubConfig{PingInterval: 50 * time.Millisecond, PingTimeout: 400 * time.Millisecond})
	p := f.newPoll(t, poll.CreateInput{})
	release := make(chan struct{})
	var calls atomic.Int32
	f.viewer = realtime.Viewer{Vote: heldVote(release, &calls)}
	var pings atomic.Int32
	c := f.dialWith(t, p.ID, &websocket.DialOptions{OnPingReceived: func(context.Context, []byte) bool {
		pings.Add(1)
		return true
	}})
	read(t, c, 5*time.Second)
	send(t, c, `{"type":"vote","ref":"0","options":["a"]}`)
	waitFor(t, "the first vote in the vote function", func() bool { return calls.Load() == 1 })

	// While it waits, the socket still reads, answers and writes...
	send(t, c, `{"type":"nope"}`)
	if m := read(t, c, 5*time.Second); m["type"] != "error" {
		t.Fatalf("message during a slow vote: %v", m)
	}
	f.publish(t, p.ID, 1)
	if m := read(t, c, 5*time.Second); m["type"] != "results" || m["total"] != float64(1) {
		t.Fatalf("results during a slow vote: %v", m)
	}
	// ...and its pongs are read: it outlives several ping timeouts.
	go func() { // keep reading so pings are answered
		for {
			if _, _, err := c.Read(context.Background()); err != nil {
				return
			}
		}
	}()
	waitFor(t, "pings for longer than two ping timeouts", func() bool { return pings.Load() >= 20 })
	if f.hub.Viewers() != 1 {
		t.Fatal("the socket was closed during a slow vote")
	}
}

func TestVotesOverflowingTheQueueAreAnswered(t *testing.T) {
	f := newFixture(t, realtime.HubConfig{})
	p := f.newPoll(t, poll.CreateInput{})
	release := make(chan struct{})
	var calls atomic.Int32
	f.viewer = realtime.Viewer{Vote: heldVote(release, &calls)}
	c := f.dial(t, p.ID)
	read(t, c, 5*time.Second)
	send(t, c, `{"type":"vote","ref":"0","options":["a"]}`)
	waitFor(t, "the first vote in the vote function", func() bool { return calls.Load() == 1 })
	// Vote 0 waits in the vote function; 8 more (the queue) wait for it;
	// the rest are answered "rate_limited" at once.
	const more, queued = 20, 8
	for i := 1; i <= more; i++ {
		send(t, c, fmt.Sprintf(`{"type":"vote","ref":"%d","options":["a"]}`, i))
	}
	answers := map[string]float64{}
	limited := 0
	for len(answers) < more+1 {
		m := read(t, c, 5*time.Second)
		if m["type"] != "vote_result" {
			continue
		}
		ref := m["ref"].(string)
		if _, dup := answers[ref]; dup {
			t.Fatalf("two answers for vote %s", ref)
		}
		answers[ref] = m["status"].(float64)
		switch m["status"] {
		case float64(429):
			if m["code"] != "rate_limited" {
				t.Fatalf("overflow answer %v", m)
			}
			if limited++; limited == more-queued {
				close(release) // every vote was read: the queued ones may go on now
			}
		case float64(202):
			if limited < more-queued {
				t.Fatalf("vote %s accepted before the overflow was answered", ref)
			}
		}
	}
	if accepted := len(answers) - limited; accepted != queued+1 || calls.Load() != queued+1 {
		t.Fatalf("%d votes accepted, %d refused, %d cast", accepted, limited, calls.Load())
	}
}

func TestPollChangesReachViewers(t *testing.T) {
	f := newFixture(t, realtime.HubConfig{})
	p := f.newPoll(t, poll.CreateInput{ResultsVisibility: poll.VisibleAfterClose})
	c := f.dial(t, p.ID)
	if m := read(t, c, 5*time.Second); m["type"] != "hidden" {
		t.Fatalf("after_close poll while open: %v", m)
	}
	f.update(t, p.ID, func(p *poll.Poll) { p.Options[0].Label = "Renamed" })
	m := readType(t, c, "poll")
	if opts := m["options"].([]any); opts[0].(map[string]any)["label"] != "Renamed" || m["status"] != "open" {
		t.Fatalf("relabelled poll: %v", m)
	}
	f.update(t, p.ID, func(p *poll.Poll) { p.ClosedByHand = true })
	if m := readType(t, c, "poll"); m["status"] != "closed" || m["voter_secret"] != nil || m["allowed_origins"] != nil || m["id"] != p.ID {
		t.Fatalf("poll message %v", m)
	}
	if m := readType(t, c, "results"); m["status"] != "closed" {
		t.Fatalf("results once closed: %v", m)
	}

	// Opening and closing by the clock.
	soon := f.newPoll(t, poll.CreateInput{ResultsVisibility: poll.VisibleAfterClose})
	f.update(t, soon.ID, func(p *poll.Poll) {
		opens, closes := time.Now().Add(300*time.Millisecond), time.Now().Add(600*time.Millisecond)
		p.OpensAt, p.ClosesAt = &opens, &closes
	})
	c2 := f.dial(t, soon.ID)
	if m := read(t, c2, 5*time.Second); m["type"] != "hidden" {
		t.Fatalf("scheduled after_close poll: %v", m)
	}
	connectedBeforeOpening := time.Now().Before(*f.poll(t, soon.ID).OpensAt)
	var statuses []any
	for len(statuses) == 0 || statuses[len(statuses)-1] != "closed" {
		statuses = append(statuses, readType(t, c2, "poll")["status"])
	}
	if statuses[0] == "scheduled" {
		statuses = statuses[1:] // the update that set the schedule
	}
	if connectedBeforeOpening && (len(statuses) != 2 || statuses[0] != "open") {
		t.Fatalf("statuses by the clock: %v", statuses)
	}
	if m := readType(t, c2, "results"); m["status"] != "closed" {
		t.Fatalf("after_close results once closed by the clock: %v", m)
	}

	// Deleting says so and closes the socket normally.
	f.update(t, p.ID, func(p *poll.Poll) {
		now := time.Now()
		p.DeletedAt = &now
	})
	if m := readType(t, c, "poll"); m["deleted"] != true || m["status"] != "closed" || m["id"] != p.ID {
		t.Fatalf("deleted poll message %v", m)
	}
	if err := readUntilClosed(t, c); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Fatalf("deleted poll: %v", err)
	}
}

func TestSubscriptionFollowsViewers(t *testing.T) {
	f := newFixture(t, realtime.HubConfig{})
	p := f.newPoll(t, poll.CreateInput{})
	base := f.nc.NumSubscriptions()
	a, b := f.dial(t, p.ID), f.dial(t, p.ID)
	read(t, a, 5*time.Second)
	read(t, b, 5*time.Second)
	if n := f.nc.NumSubscriptions(); n != base+1 {
		t.Fatalf("%d subscriptions for two viewers of one poll, want %d", n, base+1)
	}
	a.CloseNow()
	waitFor(t, "one viewer left", func() bool { return f.hub.Viewers() == 1 })
	if n := f.nc.NumSubscriptions(); n != base+1 {
		t.Fatalf("%d subscriptions with a viewer left, want %d", n, base+1)
	}
	b.CloseNow()
	waitFor(t, "the subscription dropped", func() bool { return f.nc.NumSubscriptions() == base && f.hub.Viewers() == 0 })

	// Old counts never replace newer ones.
	c := f.dial(t, p.ID)
	read(t, c, 5*time.Second)
	f.publish(t, p.ID, 5)
	if m := read(t, c, 5*time.Second); m["total"] != float64(5) {
		t.Fatalf("update: %v", m)
	}
	f.publish(t, p.ID, 3)
	f.publish(t, p.ID, 6)
	if m := read(t, c, 5*time.Second); m["total"] != float64(6) {
		t.Fatalf("after an old update, got %v", m)
	}
}

func TestResyncRecoversLostUpdates(t *testing.T) {
	f := newFixture(t, realtime.HubConfig{ResyncInterval: 50 * time.Millisecond})
	p := f.newPoll(t, poll.CreateInput{})
	c := f.dial(t, p.ID)
	read(t, c, 5*time.Second)
	// The store moved on, but its publication never arrived.
	f.counts.Store(&poll.Counts{PollID: p.ID, Total: 9, Version: 9, Options: map[string]int64{"b": 9}})
	if m := read(t, c, 5*time.Second); m["total"] != float64(9) {
		t.Fatalf("after a resync: %v", m)
	}
}

func TestStoreDownRefusesViewers(t *testing.T) {
	f := newFixture(t, realtime.HubConfig{})
	p := f.newPoll(t, poll.CreateInput{})
	down := errors.New("store down")
	f.storeErr.Store(&down)
	if err := readUntilClosed(t, f.dial(t, p.ID)); websocket.CloseStatus(err) != websocket.StatusTryAgainLater {
		t.Fatalf("socket while the store is down: %v", err)
	}
	resp, err := http.Get(f.srv.URL + "/events/" + p.ID)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("SSE while the store is down: %d %v", resp.StatusCode, resp.Header)
	}
	if n := f.hub.Viewers(); n != 0 {
		t.Fatalf("%d viewers", n)
	}
	f.storeErr.Store(nil)
	if m := read(t, f.dial(t, p.ID), 5*time.Second); m["type"] != "results" {
		t.Fatalf("once the store is back: %v", m)
	}
}

func TestServerSentEvents(t *testing.T) {
	f := newFixture(t, realtime.HubConfig{KeepAlive: 50 * time.Millisecond})
	always := f.newPoll(t, poll.CreateInput{})
	afterClose := f.newPoll(t, poll.CreateInput{ResultsVisibility: poll.VisibleAfterClose})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	type stream struct {
		next         func() (string, map[string]any)
		untilComment func()
	}
	open := func(pollID string) stream {
		req, _ := http.NewRequestWithContext(ctx, "GET", f.srv.URL+"/events/"+pollID, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		if ct, cc := resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"); ct != "text/event-stream" || cc != "no-cache" {
			t.Fatalf("Content-Type %q, Cache-Control %q", ct, cc)
		}
		sc := bufio.NewScanner(resp.Body)
		return stream{
			next: func() (string, map[string]any) {
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
						if event != m["type"] {
							t.Fatalf("event %q carries a %v message", event, m["type"])
						}
						return event, m
					}
				}
				t.Fatalf("stream ended: %v", sc.Err())
				return "", nil
			},
			untilComment: func() {
				for sc.Scan() {
					if strings.HasPrefix(sc.Text(), ":") {
						return
					}
				}
				t.Fatalf("stream ended: %v", sc.Err())
			},
		}
	}

	s := open(always.ID)
	if ev, m := s.next(); ev != "results" || m["total"] != float64(0) || m["poll_id"] != always.ID {
		t.Fatalf("first event %s %v", ev, m)
	}
	f.publish(t, always.ID, 3)
	if ev, m := s.next(); ev != "results" || m["total"] != float64(3) {
		t.Fatalf("update %s %v", ev, m)
	}

	h := open(afterClose.ID)
	if ev, m := h.next(); ev != "hidden" || len(m) != 1 {
		t.Fatalf("after_close poll over SSE: %s %v", ev, m)
	}
	f.update(t, afterClose.ID, func(p *poll.Poll) { p.ClosedByHand = true })
	if ev, m := h.next(); ev != "poll" || m["status"] != "closed" {
		t.Fatalf("poll change over SSE: %s %v", ev, m)
	}
	if ev, m := h.next(); ev != "results" || m["status"] != "closed" {
		t.Fatalf("results once closed over SSE: %s %v", ev, m)
	}
	s.untilComment() // a keep-alive on an idle stream
	waitFor(t, "two viewers", func() bool { return f.hub.Viewers() == 2 })
	cancel()
	waitFor(t, "the viewers gone", func() bool { return f.hub.Viewers() == 0 && f.running.Load() == 0 })
}

func TestCloseEndsEveryConnection(t *testing.T) {
	f := newFixture(t, realtime.HubConfig{})
	p := f.newPoll(t, poll.CreateInput{})
	conns := []*websocket.Conn{f.dial(t, p.ID), f.dial(t, p.ID)}
	errs := make(chan error, len(conns))
	for _, c := range conns {
		read(t, c, 5*time.Second)
		go func() { // keep reading so the closing handshake completes
			for {
				if _, _, err := c.Read(context.Background()); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	req, _ := http.NewRequest("GET", f.srv.URL+"/events/"+p.ID, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	waitFor(t, "three viewers", func() bool { return f.hub.Viewers() == 3 })

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
	// Close waited for the handlers' work; they return right after it.
	waitFor(t, "the live handlers returned", func() bool { return f.running.Load() == 0 })
	for range conns {
		if err := <-errs; websocket.CloseStatus(err) != websocket.StatusGoingAway {
			t.Fatalf("socket closed with %v", err)
		}
	}
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Fatalf("SSE stream after Close: %v", err)
	}
	// A connection after Close is refused at once.
	c := f.dial(t, p.ID)
	if err := readUntilClosed(t, c); websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Fatalf("socket after Close: %v", err)
	}
	f.handlers.Wait()
}

// followers connects n viewers of a poll and waits for each one's first
// message.
func followers(t *testing.T, f *fixture, pollID string, n int) []*follower {
	t.Helper()
	fls := make([]*follower, n)
	for i := range fls {
		fls[i] = follow(f.dial(t, pollID))
	}
	waitFor(t, "every viewer's first message", func() bool {
		for _, fl := range fls {
			if fl.n.Load() == 0 {
				return false
			}
		}
		return true
	})
	return fls
}

// TestFanoutRateSpacesMessagesOfCrowdedPolls: a poll with more viewers
// than FanoutRate × MinInterval gets its results less often, and every
// viewer still converges on the final counts.
func TestFanoutRateSpacesMessagesOfCrowdedPolls(t *testing.T) {
	const viewers, rate = 20, 100 // 20 viewers at 100 messages/s: one message per 200ms each
	f := newFixture(t, realtime.HubConfig{MinInterval: 10 * time.Millisecond, FanoutRate: rate})
	p := f.newPoll(t, poll.CreateInput{})
	fls := followers(t, f, p.ID, viewers)
	start := time.Now()
	var n int64
	for time.Since(start) < time.Second {
		n++
		f.publish(t, p.ID, n)
		f.flush(t)
	}
	waitFor(t, "every viewer at the final total", func() bool {
		for _, fl := range fls {
			if fl.total() != float64(n) {
				return false
			}
		}
		return true
	})
	elapsed := time.Since(start)
	interval := time.Duration(viewers) * time.Second / rate
	for i, fl := range fls {
		// The first message, then at most one per interval and one for the tail.
		if got, limit := fl.n.Load()-1, int64(elapsed/interval)+2; got > limit {
			t.Fatalf("viewer %d got %d messages in %v for %d updates: more than one per %v (limit %d)", i, got, elapsed, n, interval, limit)
		}
	}
}

// TestVotesWaitingOnASocketAreCastTogether: with VoteBatch, the votes
// queued behind a slow one go to the vote function together, and every
// vote is answered, in order, with its own ref.
func TestVotesWaitingOnASocketAreCastTogether(t *testing.T) {
	f := newFixture(t, realtime.HubConfig{})
	p := f.newPoll(t, poll.CreateInput{})
	release := make(chan struct{})
	var calls, largest atomic.Int32
	f.viewer = realtime.Viewer{
		Vote: func(context.Context, realtime.VoteMessage) realtime.VoteReply {
			t.Error("Vote called although VoteBatch is set")
			return realtime.VoteReply{Status: 500}
		},
		VoteBatch: func(ctx context.Context, ms []realtime.VoteMessage) []realtime.VoteReply {
			if calls.Add(1) == 1 {
				<-release // the first vote waits for the log while the others queue
			}
			if n := int32(len(ms)); n > largest.Load() {
				largest.Store(n)
			}
			out := make([]realtime.VoteReply, len(ms))
			for i, m := range ms {
				out[i] = realtime.VoteReply{Status: 202, VoteID: "v-" + m.Ref}
			}
			return out
		},
	}
	c := f.dial(t, p.ID)
	read(t, c, 5*time.Second)
	for i := range 8 {
		send(t, c, fmt.Sprintf(`{"type":"vote","ref":"%d","options":["a"]}`, i))
	}
	// The socket's messages are read in order: once the answer to this
	// one is back, the eight votes are queued or under way.
	send(t, c, `{"type":"hello"}`)
	readType(t, c, "error")
	close(release)
	for i := range 8 {
		m := readType(t, c, "vote_result")
		if want := strconv.Itoa(i); m["ref"] != want || m["status"] != float64(202) || m["vote_id"] != "v-"+want {
			t.Fatalf("answer %d: %v", i, m)
		}
	}
	if largest.Load() < 2 {
		t.Fatalf("the queued votes were cast one by one (largest batch %d)", largest.Load())
	}
}

// TestFrameSentWithTheUpgradeIsRead: a client may send its first frame in
// the same packet as the upgrade request; what net/http read ahead is
// carried over to the connection's own (smaller) buffers.
func TestFrameSentWithTheUpgradeIsRead(t *testing.T) {
	f := newFixture(t, realtime.HubConfig{})
	p := f.newPoll(t, poll.CreateInput{})
	host := strings.TrimPrefix(f.srv.URL, "http://")
	conn, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	payload := []byte(`{"type":"hello"}`)
	mask := [4]byte{1, 2, 3, 4}
	frame := append([]byte{0x81, 0x80 | byte(len(payload))}, mask[:]...)
	for i, b := range payload {
		frame = append(frame, b^mask[i%4])
	}
	req := fmt.Sprintf("GET /live/%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", p.ID, host)
	if _, err := conn.Write(append([]byte(req), frame...)); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	for line := ""; line != "\r\n"; {
		if line, err = br.ReadString('\n'); err != nil {
			t.Fatalf("handshake: %v", err)
		}
	}
	for {
		var h [2]byte
		if _, err := io.ReadFull(br, h[:]); err != nil {
			t.Fatalf("no answer to the frame sent with the upgrade: %v", err)
		}
		msg := make([]byte, h[1]&0x7f) // short server messages: no extended length
		if _, err := io.ReadFull(br, msg); err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(msg, []byte(`"type":"error"`)) {
			return
		}
	}
}

// TestFanoutRateKeepsViewersWithinASecond: however crowded the poll,
// results are not spaced more than half a second apart.
func TestFanoutRateKeepsViewersWithinASecond(t *testing.T) {
	f := newFixture(t, realtime.HubConfig{MinInterval: 10 * time.Millisecond, FanoutRate: 1}) // uncapped: one message per 5 s
	p := f.newPoll(t, poll.CreateInput{})
	fls := followers(t, f, p.ID, 5)
	// Updates keep coming until every viewer got four more messages:
	// about 1.5 s at one per 500 ms, 15 s at one per 5 s.
	enough := func() bool {
		for _, fl := range fls {
			if fl.n.Load() < 5 {
				return false
			}
		}
		return true
	}
	start := time.Now()
	for n := int64(1); !enough() && time.Since(start) < 4*time.Second; n++ {
		f.publish(t, p.ID, n)
		f.flush(t)
	}
	if !enough() {
		t.Fatalf("viewers got fewer than four results messages in %v of updates: spaced more than 500 ms apart", time.Since(start))
	}
}

// TestIdleViewerHasOneGoroutine: between messages a WebSocket viewer costs
// the server one goroutine, its reader; writers come and go with what they
// write. Goroutine stacks were a third of a viewer's memory.
func TestIdleViewerHasOneGoroutine(t *testing.T) {
	f := newFixture(t, realtime.HubConfig{MinInterval: 10 * time.Millisecond})
	p := f.newPoll(t, poll.CreateInput{})
	const n = 100
	base := runtime.NumGoroutine()
	fls := followers(t, f, p.ID, n)
	for i := int64(1); i <= 5; i++ {
		f.publish(t, p.ID, i)
	}
	f.flush(t)
	waitFor(t, "every viewer to see the last update", func() bool {
		for _, fl := range fls {
			if fl.total() != float64(5) {
				return false
			}
		}
		return true
	})
	// Each viewer: the server's reader and the test's follower. Writers
	// end once they have written; a little slack for the runtime's own.
	limit := base + 2*n + 10
	var got int
	testsvc.Eventually(t, 10*time.Second, "the writers to end", func() bool {
		got = runtime.NumGoroutine()
		return got <= limit
	})
	t.Logf("%d goroutines for %d viewers (%d before they connected)", got, n, base)
}
