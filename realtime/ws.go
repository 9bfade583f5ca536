package realtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// inbound is any message a client sends on a live socket.
type inbound struct {
	Type string `json:"type"`
	VoteMessage
}

type voteResult struct {
	Type   string `json:"type"`
	Ref    string `json:"ref"`
	Status int    `json:"status"`
	VoteID string `json:"vote_id,omitempty"`
	Code   string `json:"code,omitempty"`
	Detail string `json:"detail,omitempty"`
}

type errorMessage struct {
	Type   string `json:"type"`
	Code   string `json:"code"`
	Detail string `json:"detail"`
}

// maxPendingVotes bounds the votes of one socket waiting for the vote
// function; more are answered 429 rate_limited at once.
const maxPendingVotes = 8

// ServeWebSocket upgrades the request (it needs an http.ResponseWriter that
// can hijack an HTTP/1.1 connection, or unwraps to one) and streams the
// poll's live state until the client leaves, is too slow, or the hub
// closes. The caller has checked that the poll exists and the Origin is
// allowed: no origin check is made here. It returns once the connection is
// upgraded: the connection lives on in goroutines of its own, which Close
// waits for, and the request, its handler's stack and its buffers are not
// kept for the life of the connection (a third of what a viewer cost).
func (h *Hub) ServeWebSocket(w http.ResponseWriter, r *http.Request, pollID string, v Viewer) {
	sb := &smallBuffers{ResponseWriter: w}
	c, err := websocket.Accept(sb, r, &websocket.AcceptOptions{
		InsecureSkipVerify: true, // the caller checked the Origin against the poll's allowed origins
		CompressionMode:    websocket.CompressionDisabled,
	})
	if err != nil {
		v.left()
		return // Accept answered the client
	}
	c.SetReadLimit(h.cfg.MaxMessageBytes)
	// The request's context ends with the handler, not with the hijacked
	// connection: the connection gets a context of its own, which keeps
	// the request's values.
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))

	vw := newViewer(v)
	wr := newWSWriter(h, c, sb.conn, cancel, pollID, vw)
	if err := h.join(ctx, pollID, vw); err != nil {
		wr.stop(false) // nothing more is written: the connection is closed here
		code, reason := websocket.StatusGoingAway, "server shutting down"
		if !errors.Is(err, ErrHubClosed) {
			h.log.Warn("realtime: join", "poll", pollID, "err", err)
			code, reason = websocket.StatusTryAgainLater, "live results unavailable"
		}
		var wg sync.WaitGroup
		wg.Go(func() { // a reader, so that the closing handshake is bounded
			for {
				if _, _, err := c.Read(ctx); err != nil {
					return
				}
			}
		})
		h.closeConn(c, cancel, code, reason)
		cancel()
		wg.Wait()
		v.left()
		return
	}
	go h.serveConn(ctx, cancel, c, vw, v, wr)
}

// serveConn is a joined viewer's reader: it reads the client's messages
// until the connection ends, then waits for the writer to be done. A
// connection has this one goroutine, plus its vote loop once it votes and
// a writer while something is being written, because goroutine stacks are
// a large part of what an idle viewer costs.
func (h *Hub) serveConn(ctx context.Context, cancel context.CancelFunc, c *websocket.Conn, vw *viewer, v Viewer, w *wsWriter) {
	defer h.conns.Done()
	defer v.left()
	var wg sync.WaitGroup
	var votes chan VoteMessage
	var startVotes func()
	if v.Vote != nil {
		votes = make(chan VoteMessage, maxPendingVotes)
		cast := v.VoteBatch
		if cast == nil {
			cast = func(ctx context.Context, ms []VoteMessage) []VoteReply { return []VoteReply{v.Vote(ctx, ms[0])} }
		}
		batch := 1
		if v.VoteBatch != nil {
			batch = maxPendingVotes
		}
		startVotes = sync.OnceFunc(func() { wg.Go(func() { h.voteLoop(ctx, vw, votes, batch, cast) }) })
	}
	stopPings := h.startPings(ctx, c, vw)
	// readLoop returns when the connection fails or is closed, and closes
	// the viewer, which has the writer end the connection.
	h.readLoop(c, vw, votes, startVotes)
	cancel()
	stopPings()
	wg.Wait()
	w.stop(true)
}

// wsWriter writes a WebSocket viewer's messages. It has no goroutine of its
// own: each post, reply or close starts one unless one is writing already,
// which writes what is pending and ends. When the viewer is closed, it ends
// the connection as the reason demands.
type wsWriter struct {
	h      *Hub
	c      *websocket.Conn
	conn   *heldConn // what c writes to
	cancel context.CancelFunc
	pollID string
	vw     *viewer
	// stuck bounds every write: one timer per connection rather than a
	// context with a deadline per message, which is costly at thousands of
	// viewers. When it fires, the write fails and the
	// viewer is closed as too slow.
	stuck *time.Timer
	send  func(*outMsg) bool

	pending atomic.Bool // something was posted since the writer last looked
	mu      sync.Mutex  // held by the goroutine writing, if any
	last    *outMsg     // under mu: the state written last
	done    bool        // under mu: the connection is ended; nothing more is written
}

func newWSWriter(h *Hub, c *websocket.Conn, conn *heldConn, cancel context.CancelFunc, pollID string, vw *viewer) *wsWriter {
	w := &wsWriter{h: h, c: c, conn: conn, cancel: cancel, pollID: pollID, vw: vw}
	w.stuck = time.AfterFunc(time.Hour, func() { _ = c.CloseNow() })
	w.stuck.Stop()
	w.send = h.sender(vw, w.write)
	vw.kick = w.kick
	return w
}

// kick has what is pending written, by a goroutine started for it unless
// one is writing: that one looks again before it ends.
func (w *wsWriter) kick() {
	w.pending.Store(true)
	if w.mu.TryLock() {
		go w.run()
	}
}

// run writes while something is pending; it is started holding mu.
func (w *wsWriter) run() {
	for {
		w.pending.Store(false)
		if !w.done {
			w.flush()
		}
		w.mu.Unlock()
		// A kick that came after the Store above and found mu held left
		// pending set: take it over, unless a new writer already did.
		if !w.pending.Load() || !w.mu.TryLock() {
			return
		}
	}
}

// flush writes what is pending, answers in one system call, or ends the
// connection of a closed viewer.
func (w *wsWriter) flush() {
	select {
	case <-w.vw.closed:
		w.end()
		return
	default:
	}
	// Answers to votes come several at a time; a viewer that only watches
	// has one message to write, which needs no holding.
	held := len(w.vw.replies) > 0
	if held {
		w.conn.hold()
	}
	ok := w.vw.writePending(w.send, &w.last)
	if held {
		if err := w.release(); err != nil && ok {
			w.vw.slow(fmt.Errorf("write: %w", err))
			ok = false
		}
	}
	if !ok {
		w.end()
	}
}

// release writes what flush held, bounded by the write timeout.
func (w *wsWriter) release() error {
	w.stuck.Reset(w.h.cfg.WriteTimeout)
	err := w.conn.release()
	if !w.stuck.Stop() && err == nil {
		err = errWriteTimeout
	}
	return err
}

func (w *wsWriter) write(m *outMsg) error {
	w.stuck.Reset(w.h.cfg.WriteTimeout)
	err := w.c.Write(context.Background(), websocket.MessageText, m.data)
	if !w.stuck.Stop() && err == nil {
		err = errWriteTimeout
	}
	return err
}

// end ends the connection of a closed viewer; called with mu held.
func (w *wsWriter) end() {
	w.done = true
	w.stuck.Stop()
	vw, h := w.vw, w.h
	h.leave(vw) // it gets nothing more: no need to wait for the closing handshake
	switch vw.reason {
	case closeSlow:
		h.m.slow.Inc()
		h.log.Info("realtime: closing a slow WebSocket", "poll", w.pollID, "err", vw.why)
		// It does not read: the close frame is all it may get, no need to
		// wait long for an answer.
		h.closeConnWithin(w.c, w.cancel, min(h.cfg.WriteTimeout, time.Second), websocket.StatusPolicyViolation, "too slow")
	case closeShutdown:
		h.closeConn(w.c, w.cancel, websocket.StatusGoingAway, "server shutting down")
	case closeGone:
		// The poll was deleted: say so before closing normally.
		if m := vw.pollMsg.Swap(nil); m != nil {
			w.send(m)
		}
		h.closeConn(w.c, w.cancel, websocket.StatusNormalClosure, "poll deleted")
	default:
		w.c.CloseNow() // the client is gone, or broke the protocol and was told
	}
	w.cancel()
}

// stop waits for a writer under way and has nothing written after it.
// With endConn (the connection's reader, last), it ends the connection
// unless a writer did.
func (w *wsWriter) stop(endConn bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if endConn && !w.done {
		w.vw.close(closeClient) // its kick finds mu held and starts nothing
		w.end()
	}
	w.done = true
	w.stuck.Stop()
}

// closeConn closes c with a closing handshake that takes at most
// WriteTimeout.
func (h *Hub) closeConn(c *websocket.Conn, cancel context.CancelFunc, code websocket.StatusCode, reason string) {
	h.closeConnWithin(c, cancel, h.cfg.WriteTimeout, code, reason)
}

// closeConnWithin closes c with a closing handshake that takes at most
// grace: then the connection is dropped, which ends its reader.
func (h *Hub) closeConnWithin(c *websocket.Conn, cancel context.CancelFunc, grace time.Duration, code websocket.StatusCode, reason string) {
	t := time.AfterFunc(grace, func() {
		cancel()
		_ = c.CloseNow()
	})
	defer t.Stop()
	_ = c.Close(code, reason) // fails when the peer is gone already: nothing more to do
}

// readLoop reads the client's messages until the connection ends. It never
// blocks on anything but the socket: votes go to voteLoop, answers to the
// writer, so pongs are always read in time.
func (h *Hub) readLoop(c *websocket.Conn, vw *viewer, votes chan<- VoteMessage, startVotes func()) {
	defer vw.close(closeClient)
	var buf []byte
	for {
		typ, data, err := readMessage(c, buf)
		if err != nil {
			return
		}
		if cap(data) <= maxKeptReadBuffer {
			buf = data[:0]
		}
		var in inbound
		if typ != websocket.MessageText || decodeInbound(data, &in) != nil {
			vw.reply(encode("error", errorMessage{Type: "error", Code: "bad_request",
				Detail: `send JSON text messages such as {"type":"vote","ref":"1","options":["a"]}`}))
			continue
		}
		switch {
		case in.Type != "vote":
			vw.reply(encode("error", errorMessage{Type: "error", Code: "bad_request",
				Detail: "unknown message type: the only type a client sends is \"vote\""}))
		case votes == nil:
			vw.reply((&voteResult{Type: "vote_result", Ref: in.Ref, Status: http.StatusForbidden,
				Code: "forbidden", Detail: "voting is not possible on this connection"}).message())
		default:
			startVotes()
			select {
			case votes <- in.VoteMessage:
			default:
				vw.reply((&voteResult{Type: "vote_result", Ref: in.Ref, Status: http.StatusTooManyRequests,
					Code: "rate_limited", Detail: "too many votes waiting on this connection"}).message())
			}
		}
	}
}

// maxKeptReadBuffer is the largest read buffer a connection keeps between
// messages; a larger message's buffer is left to the collector.
const maxKeptReadBuffer = 4 << 10

// readMessage reads the next message into buf's space. It reads without a
// context: a context's deadline or cancellation costs the library two
// allocations a read, on the hottest path of votes over WebSocket. A read ends when the connection is closed:
// whoever ends a connection closes it (closeConnWithin, wsWriter.end).
func readMessage(c *websocket.Conn, buf []byte) (websocket.MessageType, []byte, error) {
	typ, r, err := c.Reader(context.Background())
	if err != nil {
		return 0, nil, err
	}
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)] // grow
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return typ, buf, nil
		}
		if err != nil {
			return 0, nil, err
		}
	}
}

// voteLoop casts the socket's votes in order, up to batch at once, and
// queues their answers for the writer.
func (h *Hub) voteLoop(ctx context.Context, vw *viewer, votes <-chan VoteMessage, batch int, cast func(context.Context, []VoteMessage) []VoteReply) {
	ms := make([]VoteMessage, 0, batch)
	answers := make([]*outMsg, 0, batch)
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-votes:
			ms = append(ms[:0], m)
		}
		for more := true; more && len(ms) < batch; {
			select {
			case m := <-votes:
				ms = append(ms, m)
			default:
				more = false
			}
		}
		reps := cast(ctx, ms)
		if ctx.Err() != nil {
			return // the connection is gone: nobody to answer
		}
		accepted := false
		answers = answers[:0]
		for i, m := range ms {
			rep := VoteReply{Status: http.StatusInternalServerError, Code: "internal", Detail: "no answer for this vote"}
			if i < len(reps) {
				rep = reps[i]
			}
			answers = append(answers, (&voteResult{Type: "vote_result", Ref: m.Ref, Status: rep.Status,
				VoteID: rep.VoteID, Code: rep.Code, Detail: rep.Detail}).message())
			accepted = accepted || rep.Status == http.StatusAccepted
		}
		vw.reply(answers...) // written together: one system call for the lot
		clear(answers)
		if accepted && !vw.voted.Swap(true) {
			vw.topic.refresh(vw) // after_vote: results are visible now
		}
	}
}

// startPings pings the client every PingInterval and closes a viewer that
// does not answer within PingTimeout: that also catches a client that
// never reads while its socket buffers still take our writes. Pings run
// from a timer, so a connection has no goroutine of its own between them.
// stop ends them and waits for a ping under way.
func (h *Hub) startPings(ctx context.Context, c *websocket.Conn, vw *viewer) (stop func()) {
	var (
		mu      sync.Mutex
		t       *time.Timer
		stopped bool
		running sync.WaitGroup
	)
	mu.Lock()
	defer mu.Unlock()
	t = time.AfterFunc(h.cfg.PingInterval, func() {
		mu.Lock()
		if stopped {
			mu.Unlock()
			return
		}
		running.Add(1)
		mu.Unlock()
		defer running.Done()
		if !h.ping(ctx, c, vw) {
			return
		}
		mu.Lock()
		if !stopped {
			t.Reset(h.cfg.PingInterval)
		}
		mu.Unlock()
	})
	return func() {
		mu.Lock()
		stopped = true
		t.Stop()
		mu.Unlock()
		running.Wait()
	}
}

// ping pings the client once; false means the viewer is closed.
func (h *Hub) ping(ctx context.Context, c *websocket.Conn, vw *viewer) bool {
	select {
	case <-vw.closed:
		return false
	default:
	}
	pctx, cancel := context.WithTimeout(ctx, h.cfg.PingTimeout)
	err := c.Ping(pctx)
	cancel()
	if err != nil {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			vw.slow(fmt.Errorf("no pong within %v", h.cfg.PingTimeout))
		} else {
			vw.close(closeClient) // the connection is gone already
		}
		return false
	}
	return true
}
