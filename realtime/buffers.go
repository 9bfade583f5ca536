package realtime

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
)

// Buffer sizes of a live connection. net/http hands a hijacked connection
// 4 KiB to read and 4 KiB to write, kept for the connection's life: half of
// what a viewer cost. Live messages are a few hundred bytes; larger ones
// go through these buffers in pieces.
const (
	liveReadBuffer  = 512
	liveWriteBuffer = 1024
)

// smallBuffers is the http.ResponseWriter handed to the WebSocket library:
// its Hijack gives the connection buffers of the sizes above.
type smallBuffers struct{ http.ResponseWriter }

// Unwrap lets http.ResponseController reach the writer underneath.
func (s smallBuffers) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// WriteHeaderNow passes on gin's way of sending the 101 before the hijack.
func (s smallBuffers) WriteHeaderNow() {
	if w, ok := s.ResponseWriter.(interface{ WriteHeaderNow() }); ok {
		w.WriteHeaderNow()
	}
}

// Hijack implements http.Hijacker. What the client sent past the upgrade
// request and net/http has read already is carried over.
func (s smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
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
	return conn, bufio.NewReadWriter(br, bufio.NewWriterSize(conn, liveWriteBuffer)), nil
}
