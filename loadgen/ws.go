package loadgen

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
)

// The ws scenario's client. It frames its own messages rather than use
// coder/websocket, as the server and the viewers scenario do: there every
// message is a flushed write system call of its own, and every message
// read sets up a reader, arms a timeout and allocates, CPU taken from the
// server the load generator shares the machine with. Here gobwas/ws does
// the handshake; whenever the window has room for k votes, k masked frames
// are built into one buffer and written with one call (by the reader
// itself, once it has read the answers that came, unless Config.Rate paces
// a sender), and the answers are read from one bufio.Reader (wsproto.go)
// for the four fields the scenario needs (message.go). The connection is
// dialled by network, over its source addresses; an HTTP proxy is not
// used.

const (
	wsWriteTimeout = 10 * time.Second
	wsDrainTimeout = 10 * time.Second // for the answers to the votes in flight
	reconnectPause = 100 * time.Millisecond
	wsReadBuffer   = 64 << 10
	wsReadLimit    = 1 << 20         // the longest message taken
	wsCloseTimeout = 5 * time.Second // for the server's answer to our close
)

// dialVoter opens a live WebSocket to the poll, as its owner when a key
// was given (as dialLive does), and returns it with the reader of what
// the server sends on it.
func (g *Generator) dialVoter(ctx context.Context) (net.Conn, *bufio.Reader, error) {
	d := ws.Dialer{Timeout: wsDialTimeout, NetDial: g.net.dial}
	if g.cfg.Key != "" {
		d.Header = ws.HandshakeHeaderHTTP(http.Header{"Authorization": {"Bearer " + g.cfg.Key}})
	}
	var refused error
	d.OnStatusError = func(status int, reason []byte, resp io.Reader) {
		refused = fmt.Errorf("live: %d %s", status, reason)
		if r, err := http.ReadResponse(bufio.NewReader(resp), nil); err == nil {
			refused = fmt.Errorf("live: %d %s (%s)", status, reason, problemCode(r))
		}
	}
	conn, early, _, err := d.Dial(ctx, "ws"+strings.TrimPrefix(g.liveURL(false), "http"))
	if err != nil {
		if conn != nil {
			conn.Close()
		}
		if refused != nil {
			return nil, nil, refused
		}
		return nil, nil, fmt.Errorf("live: %w", err)
	}
	var r io.Reader = conn
	if early != nil { // frames that came with the handshake's answer
		r = io.MultiReader(early, conn)
	}
	return conn, bufio.NewReaderSize(r, wsReadBuffer), nil
}

// wsWorker votes over one WebSocket at a time until sendCtx ends,
// reconnecting when a connection fails.
func (g *Generator) wsWorker(ctx, sendCtx context.Context) {
	for sendCtx.Err() == nil {
		conn, br, err := g.dialVoter(ctx)
		if err == nil {
			err = newWSVoter(g, conn, br).run(ctx, sendCtx)
		}
		if err == nil {
			return
		}
		g.st.connError(err)
		select {
		case <-sendCtx.Done():
		case <-time.After(reconnectPause):
		}
	}
}

// wsVoter pipelines votes over one WebSocket: up to pipeline votes wait
// for their answers, matched by ref. Refs are 1, 2, 3, ... on each
// connection, so the votes waiting are kept in a ring indexed by ref.
type wsVoter struct {
	g        *Generator
	conn     net.Conn
	fr       frameReader
	pipeline int
	epoch    time.Time     // times are nanoseconds since
	freed    chan struct{} // the reader answered votes and is about to wait
	readDone chan struct{} // closed when the reader ended
	readErr  error         // why, once readDone is closed
	closing  atomic.Bool   // our close frame is sent: the server's answer ends the reader

	wmu sync.Mutex // one write at a time: votes, pongs, close

	mu      sync.Mutex
	ring    []wsPending // by ref & (len-1)
	waiting int
	stopped bool // sending is over: no more votes go out

	// Without Config.Rate the reader sends the votes (inline), else the
	// sender; whichever does owns these.
	inline   bool
	seq      int64 // the last ref sent
	out, msg []byte
	opt      []byte // the option's JSON
}

// wsPending is a vote waiting for its answer; ref 0 is a free slot.
type wsPending struct {
	ref, sent int64
}

func newWSVoter(g *Generator, conn net.Conn, br *bufio.Reader) *wsVoter {
	opt, _ := json.Marshal(g.cfg.Option)
	return &wsVoter{
		g: g, conn: conn, fr: frameReader{br: br, limit: wsReadLimit}, pipeline: g.cfg.Pipeline,
		epoch: time.Now(), freed: make(chan struct{}, 1), readDone: make(chan struct{}),
		ring: make([]wsPending, 1<<bits.Len(uint(2*g.cfg.Pipeline-1))), // a power of 2, at least twice the window
		opt:  opt, inline: g.pace == nil,
	}
}

var errConnLost = errors.New("connection lost")

// run votes until sendCtx ends, then waits for the answers in flight and
// closes the connection. An error means the connection failed early.
func (v *wsVoter) run(ctx, sendCtx context.Context) error {
	defer v.conn.Close()
	stop := context.AfterFunc(ctx, func() { v.conn.Close() }) // interrupted
	defer stop()
	go v.read(sendCtx)
	err := v.send(sendCtx)
	v.mu.Lock()
	v.stopped = true
	v.mu.Unlock()
	v.drain(ctx)
	v.close()
	<-v.readDone
	v.failPending()
	return err
}

func (v *wsVoter) now() int64 { return int64(time.Since(v.epoch)) }

// room returns how many votes may be sent now: the window's free places,
// as far as the ring has free slots for the refs to come.
func (v *wsVoter) room() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	n, mask := 0, int64(len(v.ring)-1)
	for n < v.pipeline-v.waiting && v.ring[(v.seq+1+int64(n))&mask].ref == 0 {
		n++
	}
	return n
}

// send writes votes while the window has room, until sendCtx ends: with
// Config.Rate as many as are due. Without, the reader fills the window
// whenever it has read the answers that came (refill) and send only waits:
// a handoff to a sender goroutine for each write (the scheduler's wake-ups)
// costs more than the rest of the client's work.
func (v *wsVoter) send(sendCtx context.Context) error {
	if v.inline {
		select {
		case <-sendCtx.Done():
			return nil
		case <-v.readDone:
			return v.lost()
		}
	}
	for {
		room := v.room()
		for room == 0 {
			select {
			case <-v.freed:
			case <-sendCtx.Done():
				return nil
			case <-v.readDone:
				return v.lost()
			}
			room = v.room()
		}
		select {
		case <-v.readDone:
			return v.lost()
		default:
		}
		if !v.g.pace.wait(sendCtx) {
			return nil
		}
		k := 1
		for k < room && v.g.pace.take() {
			k++
		}
		if err := v.writeVotes(k); err != nil {
			select {
			case <-v.readDone: // the reader closed the connection: it says why
				return v.lost()
			default:
				return fmt.Errorf("write: %w", err)
			}
		}
	}
}

// lost is the error of a connection whose reader ended.
func (v *wsVoter) lost() error {
	if v.readErr != nil {
		return fmt.Errorf("%w: %w", errConnLost, v.readErr)
	}
	return errConnLost
}

// refill fills the window, unless sendCtx ended (inline only).
func (v *wsVoter) refill(sendCtx context.Context) error {
	if sendCtx.Err() != nil {
		return nil
	}
	if k := v.room(); k > 0 {
		if err := v.writeVotes(k); err != nil {
			return fmt.Errorf("write: %w", err)
		}
	}
	return nil
}

// writeVotes sends k votes in one write, unless sending is over.
func (v *wsVoter) writeVotes(k int) error {
	v.out = v.out[:0]
	voter := v.g.voterSeq.Add(uint64(k)) - uint64(k)
	for i := range k {
		voter++
		m := append(v.msg[:0], `{"type":"vote","ref":"`...)
		m = strconv.AppendInt(m, v.seq+1+int64(i), 10)
		m = append(append(append(m, `","options":[`...), v.opt...), `],"voter":"`...)
		m = append(v.g.appendVoter(m, voter), `"}`...)
		v.msg = m
		v.out = appendFrame(v.out, ws.OpText, m, rand.Uint32())
	}
	sent, mask := v.now(), int64(len(v.ring)-1)
	v.mu.Lock()
	if v.stopped { // drain may have seen no vote waiting: too late
		v.mu.Unlock()
		return nil
	}
	for range k {
		v.seq++
		v.ring[v.seq&mask] = wsPending{ref: v.seq, sent: sent}
	}
	v.waiting += k
	v.mu.Unlock()
	v.g.st.sent.Add(int64(k))
	return v.write(v.out)
}

func (v *wsVoter) write(p []byte) error {
	v.wmu.Lock()
	defer v.wmu.Unlock()
	if err := v.conn.SetWriteDeadline(time.Now().Add(wsWriteTimeout)); err != nil {
		return err
	}
	_, err := v.conn.Write(p)
	return err
}

// writeControl sends a control frame.
func (v *wsVoter) writeControl(op ws.OpCode, payload []byte) error {
	return v.write(appendFrame(make([]byte, 0, 6+len(payload)), op, payload, rand.Uint32()))
}

// read matches answers to votes until the connection ends.
func (v *wsVoter) read(sendCtx context.Context) {
	err := v.readLoop(sendCtx)
	if err != nil && !v.closing.Load() {
		v.readErr = err
	}
	close(v.readDone)
	v.conn.Close() // a write in progress fails at once
}

func (v *wsVoter) readLoop(sendCtx context.Context) error {
	if v.inline {
		if err := v.refill(sendCtx); err != nil {
			return err
		}
	}
	freed := false
	for {
		if freed && !v.fr.frameBuffered() {
			// Answers came and the reader may wait now: fill the window
			// in one write, not a vote at a time.
			if v.inline {
				if err := v.refill(sendCtx); err != nil {
					return err
				}
			}
			select {
			case v.freed <- struct{}{}:
			default:
			}
			freed = false
		}
		op, p, err := v.fr.next()
		if err != nil {
			return err
		}
		switch op {
		case ws.OpText:
			a, err := decodeAnswer(p)
			if err != nil {
				return fmt.Errorf("unreadable message %.100q: %w", p, err)
			}
			switch a.typ {
			case "vote_result":
				if !a.hasRef {
					return fmt.Errorf("an answer without a ref: %.100q", p)
				}
				freed = v.answer(a) || freed
			case "error":
				return fmt.Errorf("the server could not read a vote: %.200q", p)
			}
		case ws.OpPing:
			if err := v.writeControl(ws.OpPong, p); err != nil {
				return err
			}
		case ws.OpClose:
			if v.closing.Load() {
				return nil // the answer to ours
			}
			echo := p[:min(len(p), 2)] // its status code
			_ = v.writeControl(ws.OpClose, echo)
			code, reason := ws.ParseCloseFrameData(p)
			return fmt.Errorf("closed by the server: %d %q", code, reason)
		case ws.OpPong:
		default:
			return fmt.Errorf("%w: a binary message", errWSProtocol)
		}
	}
}

// answer counts the outcome of the vote a vote_result answers, and
// reports whether it was one waiting. An answer to no vote waiting is
// ignored.
func (v *wsVoter) answer(a wsAnswer) bool {
	if !a.refOK {
		return false
	}
	v.mu.Lock()
	slot := &v.ring[a.ref&int64(len(v.ring)-1)]
	if slot.ref != a.ref {
		v.mu.Unlock()
		return false
	}
	sent := slot.sent
	*slot = wsPending{}
	v.waiting--
	v.mu.Unlock()
	switch {
	case !a.statusOK:
		v.g.st.fail(codeTransport, 1) // an answer we cannot read: outcome unknown
	case a.status == http.StatusAccepted:
		v.g.st.lat.Record(time.Duration(v.now() - sent))
		v.g.st.ok.Add(1)
	default:
		v.g.st.fail(statusCode(a.status, a.code), 1)
	}
	return true
}

// drain waits until every vote sent was answered, the connection ended,
// or wsDrainTimeout passed.
func (v *wsVoter) drain(ctx context.Context) {
	t := time.NewTimer(wsDrainTimeout)
	defer t.Stop()
	for {
		v.mu.Lock()
		waiting := v.waiting
		v.mu.Unlock()
		if waiting == 0 {
			return
		}
		select {
		case <-v.freed:
		case <-v.readDone:
			return
		case <-t.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// close starts the closing handshake; the reader ends with the server's
// answer, or wsCloseTimeout later.
func (v *wsVoter) close() {
	v.closing.Store(true)
	_ = v.writeControl(ws.OpClose, append(binary.BigEndian.AppendUint16(nil, uint16(ws.StatusNormalClosure)), "bench done"...))
	_ = v.conn.SetReadDeadline(time.Now().Add(wsCloseTimeout))
}

// failPending counts the votes that never got an answer: their outcome is
// unknown.
func (v *wsVoter) failPending() {
	v.mu.Lock()
	clear(v.ring)
	n := v.waiting
	v.waiting = 0
	v.mu.Unlock()
	if n > 0 {
		v.g.st.fail(codeTransport, int64(n))
	}
}
