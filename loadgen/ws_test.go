package loadgen

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gobwas/ws"
)

// fakeLive is the server end of a live socket for a wsVoter: it reads
// the votes and answers as the test says.
type fakeLive struct {
	t     *testing.T
	conn  net.Conn
	votes chan ws.Frame // the client's frames, unmasked
}

func newFakeLive(t *testing.T, g *Generator) (*fakeLive, *wsVoter) {
	t.Helper()
	c, s := net.Pipe()
	t.Cleanup(func() { c.Close(); s.Close() })
	fl := &fakeLive{t: t, conn: s, votes: make(chan ws.Frame, 1024)}
	go func() {
		defer close(fl.votes)
		br := bufio.NewReader(s)
		for {
			f, err := ws.ReadFrame(br)
			if err != nil {
				return
			}
			if !f.Header.Masked {
				t.Errorf("an unmasked frame from the client: %+v", f.Header)
			}
			fl.votes <- ws.UnmaskFrame(f)
		}
	}()
	return fl, newWSVoter(g, c, bufio.NewReaderSize(c, wsReadBuffer))
}

// next returns the client's next frame.
func (fl *fakeLive) next() ws.Frame {
	fl.t.Helper()
	f, ok := <-fl.votes
	if !ok {
		fl.t.Fatal("the client's end closed")
	}
	return f
}

// vote returns the ref of the client's next frame, a vote.
func (fl *fakeLive) vote() string {
	fl.t.Helper()
	f := fl.next()
	var m struct{ Type, Ref, Voter string }
	if f.Header.OpCode != ws.OpText || json.Unmarshal(f.Payload, &m) != nil || m.Type != "vote" || m.Voter == "" {
		fl.t.Fatalf("not a vote: %+v %q", f.Header, f.Payload)
	}
	return m.Ref
}

func (fl *fakeLive) send(frames ...[]byte) {
	fl.t.Helper()
	if _, err := fl.conn.Write(concat(frames...)); err != nil {
		fl.t.Fatal(err)
	}
}

func result(ref string, status int, code string) []byte {
	return serverFrame(true, ws.OpText, fmt.Sprintf(`{"type":"vote_result","ref":%q,"status":%d,"code":%q}`, ref, status, code))
}

func testGenerator(pipeline int) *Generator {
	return &Generator{cfg: Config{Pipeline: pipeline, Option: "a"}, runID: "bench-test", st: newStats()}
}

// TestWSVoter runs a voter against a scripted server: answers in
// any order and split across writes, messages that are not answers
// between them, a ping, an answer to no vote, and the closing handshake.
func TestWSVoter(t *testing.T) {
	g := testGenerator(4)
	fl, v := newFakeLive(t, g)
	sendCtx, stopSending := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- v.run(context.Background(), sendCtx) }()

	refs := []string{fl.vote(), fl.vote(), fl.vote(), fl.vote()} // the window
	if want := []string{"1", "2", "3", "4"}; fmt.Sprint(refs) != fmt.Sprint(want) {
		t.Fatalf("refs %v, want %v", refs, want)
	}
	r2 := result("2", 202, "")
	fl.send(serverFrame(true, ws.OpText, `{"type":"results","total":0,"options":[]}`), r2[:5])
	fl.send(r2[5:], result("1", 409, "already_voted"), serverFrame(true, ws.OpPing, "are you there"))
	if f := fl.next(); f.Header.OpCode != ws.OpPong || string(f.Payload) != "are you there" {
		t.Fatalf("want the pong, got %+v %q", f.Header, f.Payload)
	}
	if a, b := fl.vote(), fl.vote(); a != "5" || b != "6" { // two places came free
		t.Fatalf("refs %s %s, want 5 6", a, b)
	}
	stopSending()
	fl.send(result("99", 202, ""), serverFrame(true, ws.OpText, `{"type":"poll","id":"p"}`), result("4", 202, ""),
		result("3", 202, ""), result("5", 202, ""), result("6", 503, "overloaded"))
	if f := fl.next(); f.Header.OpCode != ws.OpClose || binary.BigEndian.Uint16(f.Payload) != uint16(ws.StatusNormalClosure) {
		t.Fatalf("want a normal close, got %+v %q", f.Header, f.Payload)
	}
	fl.send(serverFrame(true, ws.OpClose, "\x03\xe8"))
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	if s := g.st; s.sent.Load() != 6 || s.ok.Load() != 4 || s.failed.Load() != 2 || s.unknown.Load() != 0 || s.lat.Count() != 4 {
		t.Errorf("sent %d ok %d failed %d unknown %d latencies %d", s.sent.Load(), s.ok.Load(), s.failed.Load(), s.unknown.Load(), s.lat.Count())
	}
	if codes := g.st.codeCounts(); codes["already_voted"] != 1 || codes["overloaded"] != 1 {
		t.Errorf("codes %v", codes)
	}
}

// TestWSVoterGarbled checks that an unreadable message ends the
// connection with an error and the votes waiting count as outcome unknown.
func TestWSVoterGarbled(t *testing.T) {
	for name, msg := range map[string][]byte{
		"not JSON":          serverFrame(true, ws.OpText, `{"type":"vote_result","ref":"1",`),
		"no ref":            serverFrame(true, ws.OpText, `{"type":"vote_result","status":202}`),
		"an error":          serverFrame(true, ws.OpText, `{"type":"error","code":"bad_request"}`),
		"a binary message":  serverFrame(true, ws.OpBinary, `{}`),
		"a protocol error":  {0x81, 0x85, 1, 2, 3, 4, 'a', 'b', 'c', 'd', 'e'},
		"closed by the end": serverFrame(true, ws.OpClose, "\x03\xf3going"),
	} {
		t.Run(name, func(t *testing.T) {
			g := testGenerator(2)
			fl, v := newFakeLive(t, g)
			done := make(chan error, 1)
			go func() { done <- v.run(context.Background(), context.Background()) }()
			fl.vote()
			fl.vote()
			fl.send(result("1", 202, ""), msg)
			err := <-done
			if !errors.Is(err, errConnLost) {
				t.Fatalf("run: %v, want the connection lost", err)
			}
			t.Logf("run: %v", err)
			if s := g.st; s.sent.Load() != 2 || s.ok.Load() != 1 || s.unknown.Load() != 1 || s.failed.Load() != 1 {
				t.Errorf("sent %d ok %d failed %d unknown %d", s.sent.Load(), s.ok.Load(), s.failed.Load(), s.unknown.Load())
			}
		})
	}
}

// TestWSDialRefused checks that a refused handshake says why.
func TestWSDialRefused(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer k" || r.Header.Get("Upgrade") != "websocket" {
			t.Errorf("handshake headers: %v", r.Header)
		}
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `{"status":403,"code":"origin_not_allowed"}`)
	}))
	defer srv.Close()
	cfg := Config{URL: srv.URL, Key: "k", Concurrency: 1, Sources: 1}
	n, err := newNetwork(cfg)
	if err != nil {
		t.Fatal(err)
	}
	g := &Generator{cfg: cfg, net: n, pollID: "p"}
	_, _, err = g.dialVoter(context.Background())
	if err == nil || !strings.Contains(err.Error(), "403") || !strings.Contains(err.Error(), "origin_not_allowed") {
		t.Fatalf("dial: %v", err)
	}
}
