package loadgen

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/gobwas/ws"
)

// The client side of RFC 6455 that the ws scenario needs, on bytes it
// owns: masked frames appended to one buffer (so that many votes go out in
// one write) and frames read from one bufio.Reader without a copy.
// gobwas/ws does the handshake and the masking.

// appendFrame appends a final client frame of op carrying payload, masked
// with key as RFC 6455 §5.3 requires of a client, to buf.
func appendFrame(buf []byte, op ws.OpCode, payload []byte, key uint32) []byte {
	buf = append(buf, 0x80|byte(op))
	switch n := len(payload); {
	case n < 126:
		buf = append(buf, 0x80|byte(n))
	case n <= 0xffff:
		buf = append(buf, 0x80|126, byte(n>>8), byte(n))
	default:
		buf = binary.BigEndian.AppendUint64(append(buf, 0x80|127), uint64(n))
	}
	var mask [4]byte
	binary.LittleEndian.PutUint32(mask[:], key)
	buf = append(buf, mask[:]...)
	start := len(buf)
	buf = append(buf, payload...)
	ws.Cipher(buf[start:], mask, 0)
	return buf
}

// errWSProtocol is the error of a server that broke RFC 6455, or sent
// what this client does not take.
var errWSProtocol = errors.New("websocket protocol error")

// frameHeader is a parsed frame header.
type frameHeader struct {
	fin    bool
	op     ws.OpCode
	size   int // of the header
	length int // of the payload
}

// parseFrameHeader parses the header at the start of p. complete is false
// when p is too short to hold it; err is set for a header a server must
// not send (a mask, reserved bits without an extension, an unknown
// opcode, a long or fragmented control frame) or a payload over limit.
func parseFrameHeader(p []byte, limit int) (h frameHeader, complete bool, err error) {
	if len(p) < 2 {
		return h, false, nil
	}
	h.fin, h.op = p[0]&0x80 != 0, ws.OpCode(p[0]&0x0f)
	switch {
	case p[0]&0x70 != 0:
		return h, true, fmt.Errorf("%w: reserved bits set", errWSProtocol)
	case p[1]&0x80 != 0:
		return h, true, fmt.Errorf("%w: a masked frame from the server", errWSProtocol)
	case h.op > ws.OpBinary && h.op < ws.OpClose || h.op > ws.OpPong:
		return h, true, fmt.Errorf("%w: opcode %d", errWSProtocol, h.op)
	}
	n := uint64(p[1] & 0x7f)
	h.size = 2
	switch n {
	case 126:
		h.size = 4
	case 127:
		h.size = 10
	}
	if len(p) < h.size {
		return h, false, nil
	}
	switch n {
	case 126:
		n = uint64(binary.BigEndian.Uint16(p[2:4]))
	case 127:
		n = binary.BigEndian.Uint64(p[2:10])
	}
	switch {
	case h.op.IsControl() && (!h.fin || n > 125):
		return h, true, fmt.Errorf("%w: control frame %d fragmented or of %d bytes", errWSProtocol, h.op, n)
	case n > uint64(limit):
		return h, true, fmt.Errorf("%w: a frame of %d bytes (limit %d)", errWSProtocol, n, limit)
	}
	h.length = int(n)
	return h, true, nil
}

// frameReader reads a server's frames from a bufio.Reader. Messages
// fragmented over continuation frames are put together; control frames
// between their fragments come out on their own.
type frameReader struct {
	br    *bufio.Reader
	limit int // the longest message taken, in bytes

	consumed int       // bytes of the last frame, still in br's buffer
	fragOp   ws.OpCode // the opcode of the message being put together; 0 when none
	msg      []byte    // a fragmented message, or one longer than br's buffer
}

// next returns the next whole message (text or binary) or control frame.
// The payload is valid until the next call.
func (r *frameReader) next() (ws.OpCode, []byte, error) {
	for {
		if r.consumed > 0 {
			_, _ = r.br.Discard(r.consumed) // buffered already: cannot fail
			r.consumed = 0
		}
		h, err := r.header()
		if err != nil {
			return 0, nil, err
		}
		switch {
		case h.op == ws.OpContinuation && r.fragOp == 0:
			return 0, nil, fmt.Errorf("%w: a continuation frame outside a message", errWSProtocol)
		case h.op == ws.OpText || h.op == ws.OpBinary:
			if r.fragOp != 0 {
				return 0, nil, fmt.Errorf("%w: a new message inside a fragmented one", errWSProtocol)
			}
			if !h.fin {
				r.fragOp, r.msg = h.op, r.msg[:0]
			}
		}
		whole := h.op.IsControl() || h.fin && h.op != ws.OpContinuation
		if total := h.size + h.length; total <= r.br.Size() {
			p, err := r.br.Peek(total)
			if err != nil {
				return 0, nil, err
			}
			r.consumed = total
			if whole {
				return h.op, p[h.size:], nil // the usual case: no copy
			}
			if len(r.msg)+h.length > r.limit {
				return 0, nil, fmt.Errorf("%w: a message over %d bytes", errWSProtocol, r.limit)
			}
			r.msg = append(r.msg, p[h.size:]...)
		} else { // longer than the buffer: into msg as it arrives
			_, _ = r.br.Discard(h.size)
			if whole {
				r.msg = r.msg[:0]
			}
			if r.msg, err = r.readInto(r.msg, h.length); err != nil {
				return 0, nil, err
			}
			if whole {
				return h.op, r.msg, nil
			}
		}
		if h.fin {
			op := r.fragOp
			r.fragOp = 0
			return op, r.msg, nil
		}
	}
}

// header waits for the next frame's header and parses it.
func (r *frameReader) header() (frameHeader, error) {
	for n := 2; ; {
		p, err := r.br.Peek(n)
		if err != nil {
			return frameHeader{}, err
		}
		h, complete, err := parseFrameHeader(p, r.limit)
		if err != nil || complete {
			return h, err
		}
		n = h.size
	}
}

// readInto appends n bytes from br to buf, growing it as they arrive
// rather than by the length a peer declared.
func (r *frameReader) readInto(buf []byte, n int) ([]byte, error) {
	if len(buf)+n > r.limit {
		return buf, fmt.Errorf("%w: a message over %d bytes", errWSProtocol, r.limit)
	}
	for n > 0 {
		p, err := r.br.Peek(min(n, r.br.Size()))
		if len(p) == 0 && err != nil {
			return buf, err
		}
		buf = append(buf, p...)
		_, _ = r.br.Discard(len(p))
		n -= len(p)
	}
	return buf, nil
}

// frameBuffered reports whether a whole frame is in br's buffer already,
// after the last one returned: if not, the next call to next may block.
func (r *frameReader) frameBuffered() bool {
	n := r.br.Buffered() - r.consumed
	if n < 2 {
		return false
	}
	p, _ := r.br.Peek(r.consumed + n)
	h, complete, err := parseFrameHeader(p[r.consumed:], r.limit)
	return err != nil || complete && h.size+h.length <= n
}
