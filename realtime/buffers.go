package realtime

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"sync"
)

// Buffer sizes of a live connection. net/http hands a hijacked connection
// 4 KiB to read and 4 KiB to write, kept for the connection's life, which
// would dominate what an idle viewer costs. Live messages are a few hundred bytes; larger ones
// go through these buffers in pieces.
const (
	liveReadBuffer  = 512
	liveWriteBuffer = 1024
)

// smallBuffers is the http.ResponseWriter handed to the WebSocket library:
// its Hijack gives the connection buffers of the sizes above, and writes
// that go through a heldConn, kept in conn.
type smallBuffers struct {
	http.ResponseWriter
	conn *heldConn // set by Hijack
}

// Unwrap lets http.ResponseController reach the writer underneath.
func (s *smallBuffers) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// WriteHeaderNow passes on gin's way of sending the 101 before the hijack.
func (s *smallBuffers) WriteHeaderNow() {
	if w, ok := s.ResponseWriter.(interface{ WriteHeaderNow() }); ok {
		w.WriteHeaderNow()
	}
}

// Hijack implements http.Hijacker. What the client sent past the upgrade
// request and net/http has read already is carried over.
func (s *smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(s.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	if err := brw.Writer.Flush(); err != nil {
		conn.Close()
		return nil, nil, err
	}
	br := bufio.NewReaderSize(conn, liveReadBuffer)
	if n := brw.Reader.Buffered(); n > 0 {
		// Buffered in the new reader, not queued in front of conn: the
		// library re-reads what is buffered, then reads conn itself.
		early, _ := brw.Reader.Peek(n)
		br = bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(early)), conn), max(liveReadBuffer, n))
		if _, err := br.Peek(n); err != nil {
			conn.Close()
			return nil, nil, err
		}
	}
	s.conn = &heldConn{Conn: conn}
	return s.conn, bufio.NewReadWriter(br, bufio.NewWriterSize(s.conn, liveWriteBuffer)), nil
}

// heldConn is a live connection whose writes can be held back and sent
// together. The WebSocket library flushes every message with a write of
// its own: a system call per message, a large cost when votes arrive
// over WebSocket. The connection's writer holds the
// writes while it writes what is pending (say eight answers to eight
// votes) and releases them with one system call.
//
// Writes made while nothing is held (pings, pongs, closing frames) go
// straight through; writes made while held (a ping during a flush) join
// the held bytes in order.
type heldConn struct {
	net.Conn
	mu   sync.Mutex
	held bool
	buf  *[]byte // while held: the bytes written since hold; from heldBufs
}

// heldBufs recycles the buffers of held writes: a viewer holds one only
// while its writer runs.
var heldBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// maxHeldBytes is where a held write goes out without waiting for release,
// so that one flush never buffers without bound.
const maxHeldBytes = 64 << 10

func (c *heldConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.held {
		return c.Conn.Write(p)
	}
	if c.buf == nil {
		c.buf = heldBufs.Get().(*[]byte)
	}
	*c.buf = append(*c.buf, p...)
	if len(*c.buf) >= maxHeldBytes {
		if err := c.writeHeldLocked(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// hold has the writes that follow wait for release.
func (c *heldConn) hold() {
	c.mu.Lock()
	c.held = true
	c.mu.Unlock()
}

// release writes what was held, in one system call, and lets later writes
// through.
func (c *heldConn) release() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.held = false
	return c.writeHeldLocked()
}

func (c *heldConn) writeHeldLocked() error {
	if c.buf == nil {
		return nil
	}
	b := c.buf
	c.buf = nil
	_, err := c.Conn.Write(*b)
	if cap(*b) <= maxHeldBytes*2 {
		*b = (*b)[:0]
		heldBufs.Put(b)
	}
	return err
}
