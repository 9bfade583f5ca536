package loadgen

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/gobwas/ws"
)

// serverFrame is a frame as a server writes it: unmasked.
func serverFrame(fin bool, op ws.OpCode, payload string) []byte {
	var buf bytes.Buffer
	if err := ws.WriteFrame(&buf, ws.Frame{Header: ws.Header{Fin: fin, OpCode: op, Length: int64(len(payload))}, Payload: []byte(payload)}); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

func concat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

type wantFrame struct {
	op      ws.OpCode
	payload string
}

func TestWSFrameReader(t *testing.T) {
	long := strings.Repeat("x", 70_000) // longer than the reader's buffer, with a 64-bit length
	mid := strings.Repeat("y", 300)     // a 16-bit length
	answer := `{"type":"vote_result","ref":"1","status":202,"vote_id":"v1"}`
	tests := []struct {
		name    string
		stream  []byte
		want    []wantFrame
		wantErr error // after the frames; io.EOF when the stream just ends
	}{
		{
			name: "text frames, a ping, a close",
			stream: concat(serverFrame(true, ws.OpText, `{"type":"results","total":0}`), serverFrame(true, ws.OpText, answer),
				serverFrame(true, ws.OpPing, "p1"), serverFrame(true, ws.OpClose, "\x03\xe8bye")),
			want: []wantFrame{{ws.OpText, `{"type":"results","total":0}`}, {ws.OpText, answer},
				{ws.OpPing, "p1"}, {ws.OpClose, "\x03\xe8bye"}},
			wantErr: io.EOF,
		},
		{
			name:    "empty payloads",
			stream:  concat(serverFrame(true, ws.OpText, ""), serverFrame(true, ws.OpPing, "")),
			want:    []wantFrame{{ws.OpText, ""}, {ws.OpPing, ""}},
			wantErr: io.EOF,
		},
		{
			name:    "16-bit and 64-bit lengths",
			stream:  concat(serverFrame(true, ws.OpText, mid), serverFrame(true, ws.OpText, long), serverFrame(true, ws.OpText, "after")),
			want:    []wantFrame{{ws.OpText, mid}, {ws.OpText, long}, {ws.OpText, "after"}},
			wantErr: io.EOF,
		},
		{
			name: "a fragmented message with a ping between its fragments",
			stream: concat(serverFrame(false, ws.OpText, `{"type":"vote_`), serverFrame(true, ws.OpPing, "p"),
				serverFrame(false, ws.OpContinuation, `result","ref":"1",`), serverFrame(false, ws.OpContinuation, ""),
				serverFrame(true, ws.OpContinuation, `"status":202}`), serverFrame(true, ws.OpText, "next")),
			want:    []wantFrame{{ws.OpPing, "p"}, {ws.OpText, `{"type":"vote_result","ref":"1","status":202}`}, {ws.OpText, "next"}},
			wantErr: io.EOF,
		},
		{
			name:    "a fragmented message longer than the buffer",
			stream:  concat(serverFrame(false, ws.OpText, "ab"), serverFrame(false, ws.OpContinuation, long), serverFrame(true, ws.OpContinuation, "cd")),
			want:    []wantFrame{{ws.OpText, "ab" + long + "cd"}},
			wantErr: io.EOF,
		},
		{
			name:    "cut inside a frame",
			stream:  serverFrame(true, ws.OpText, answer)[:20],
			wantErr: io.EOF,
		},
		{
			name:    "a masked frame",
			stream:  []byte{0x81, 0x82, 1, 2, 3, 4, 'a', 'b'},
			wantErr: errWSProtocol,
		},
		{
			name:    "reserved bits",
			stream:  []byte{0xc1, 0x01, 'a'},
			wantErr: errWSProtocol,
		},
		{
			name:    "an unknown opcode",
			stream:  []byte{0x83, 0x00},
			wantErr: errWSProtocol,
		},
		{
			name:    "a continuation outside a message",
			stream:  serverFrame(true, ws.OpContinuation, "a"),
			wantErr: errWSProtocol,
		},
		{
			name:    "a new message inside a fragmented one",
			stream:  concat(serverFrame(false, ws.OpText, "a"), serverFrame(true, ws.OpText, "b")),
			wantErr: errWSProtocol,
		},
		{
			name:    "a fragmented ping",
			stream:  serverFrame(false, ws.OpPing, "a"),
			wantErr: errWSProtocol,
		},
		{
			name:    "a long ping",
			stream:  serverFrame(true, ws.OpPing, mid),
			wantErr: errWSProtocol,
		},
		{
			name:    "a frame over the limit",
			stream:  []byte{0x81, 127, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
			wantErr: errWSProtocol,
		},
		{
			name:    "fragments over the limit together",
			stream:  concat(serverFrame(false, ws.OpText, long), serverFrame(false, ws.OpContinuation, long)),
			wantErr: errWSProtocol,
		},
	}
	reads := map[string]func(io.Reader) io.Reader{
		"whole":    func(r io.Reader) io.Reader { return r },
		"one byte": iotest.OneByteReader, // every frame split across reads
		"half":     iotest.HalfReader,
	}
	for _, tt := range tests {
		for how, wrap := range reads {
			t.Run(tt.name+"/"+how, func(t *testing.T) {
				fr := frameReader{br: bufio.NewReaderSize(wrap(bytes.NewReader(tt.stream)), wsReadBuffer), limit: 100_000}
				for i, w := range tt.want {
					op, p, err := fr.next()
					if err != nil || op != w.op || string(p) != w.payload {
						t.Fatalf("frame %d: %v %.40q %v; want %v %.40q", i, op, p, err, w.op, w.payload)
					}
				}
				if op, p, err := fr.next(); !errors.Is(err, tt.wantErr) {
					t.Fatalf("after the frames: %v %.40q %v; want %v", op, p, err, tt.wantErr)
				}
			})
		}
	}
}

// TestWSFrameBuffered checks the reader's test for a frame it can
// return without waiting.
func TestWSFrameBuffered(t *testing.T) {
	a, b := serverFrame(true, ws.OpText, "first"), serverFrame(true, ws.OpText, "second")
	pr, pw := io.Pipe()
	fr := frameReader{br: bufio.NewReaderSize(pr, 64), limit: 1000}
	go func() { _, _ = pw.Write(concat(a, b[:3])) }()
	if _, p, err := fr.next(); err != nil || string(p) != "first" {
		t.Fatalf("%q %v", p, err)
	}
	if fr.frameBuffered() {
		t.Fatal("half a frame buffered counts as a frame")
	}
	go func() { _, _ = pw.Write(b[3:]) }()
	if _, err := fr.br.Peek(fr.consumed + len(b)); err != nil {
		t.Fatal(err)
	}
	if !fr.frameBuffered() {
		t.Fatal("a whole frame buffered not seen")
	}
}

// TestWSAppendFrame reads the frames the client writes with gobwas/ws.
func TestWSAppendFrame(t *testing.T) {
	var buf []byte
	lengths := []int{0, 1, 125, 126, 65535, 65536}
	for i, n := range lengths {
		buf = appendFrame(buf, ws.OpText, bytes.Repeat([]byte{byte('a' + i)}, n), uint32(i*0x9e3779b9))
	}
	r := bytes.NewReader(buf)
	for i, n := range lengths {
		f, err := ws.ReadFrame(r)
		if err != nil {
			t.Fatal(err)
		}
		if !f.Header.Masked || !f.Header.Fin || f.Header.OpCode != ws.OpText || len(f.Payload) != n {
			t.Fatalf("frame %d: %+v", i, f.Header)
		}
		f = ws.UnmaskFrame(f)
		if !bytes.Equal(f.Payload, bytes.Repeat([]byte{byte('a' + i)}, n)) {
			t.Fatalf("frame %d: payload %.20q", i, f.Payload)
		}
	}
	if r.Len() != 0 {
		t.Errorf("%d bytes left", r.Len())
	}
}

// FuzzWSFrameReader feeds bytes to the frame reader: it must return
// frames within its limit or an error, never panic or loop.
func FuzzWSFrameReader(f *testing.F) {
	f.Add(concat(serverFrame(true, ws.OpText, `{"type":"results"}`), serverFrame(true, ws.OpPing, "p")))
	f.Add(concat(serverFrame(false, ws.OpText, "ab"), serverFrame(true, ws.OpPing, "p"), serverFrame(true, ws.OpContinuation, "cd")))
	f.Add(concat(serverFrame(true, ws.OpText, strings.Repeat("z", 200)), []byte{0x81, 126, 0, 100}))
	f.Add([]byte{0x89, 0x7e, 0x00, 0x10})
	f.Fuzz(func(t *testing.T, data []byte) {
		const limit = 150
		fr := frameReader{br: bufio.NewReaderSize(iotest.HalfReader(bytes.NewReader(data)), 16), limit: limit}
		for range len(data) + 1 { // every frame takes at least two bytes
			op, p, err := fr.next()
			if err != nil {
				return
			}
			if len(p) > limit || op != ws.OpText && op != ws.OpBinary && !op.IsControl() {
				t.Fatalf("op %v, %d bytes", op, len(p))
			}
		}
		t.Fatal("more frames than bytes")
	})
}
