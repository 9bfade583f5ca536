package loadgen

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"

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

func TestWSScanAnswer(t *testing.T) {
	tests := []struct {
		name, data string
		want       wsAnswer
		wantErr    bool
	}{
		{name: "as the server writes it", data: `{"type":"vote_result","ref":"17","status":202,"vote_id":"v-1"}`,
			want: wsAnswer{typ: []byte("vote_result"), ref: 17, refOK: true, hasRef: true, status: 202, statusOK: true}},
		{name: "a failure", data: `{"type":"vote_result","ref":"3","status":429,"code":"rate_limited","detail":"too many \"votes\""}`,
			want: wsAnswer{typ: []byte("vote_result"), ref: 3, refOK: true, hasRef: true, status: 429, statusOK: true, code: []byte("rate_limited")}},
		{name: "another order, white space", data: " { \"status\" : 409 ,\n\"code\":\"already_voted\", \"ref\":\"8\", \"type\" :\"vote_result\" } ",
			want: wsAnswer{typ: []byte("vote_result"), ref: 8, refOK: true, hasRef: true, status: 409, statusOK: true, code: []byte("already_voted")}},
		{name: "escapes", data: `{"t\u0079pe":"vote\u005fresult","ref":"1\u0032","status":503,"code":"over\u006coaded"}`,
			want: wsAnswer{typ: []byte("vote_result"), ref: 12, refOK: true, hasRef: true, status: 503, statusOK: true, code: []byte("overloaded")}},
		{name: "results", data: `{"type":"results","poll_id":"p","total":3,"options":[{"id":"a","votes":2},{"id":"b","votes":1}],"status":"open"}`,
			want: wsAnswer{typ: []byte("results")}},
		{name: "nested values skipped", data: `{"x":{"type":"no","a":[1,{"b":"}]"}],"c":null},"type":"poll","y":[true,false,-1.5e3]}`,
			want: wsAnswer{typ: []byte("poll")}},
		{name: "the last of a duplicate wins", data: `{"type":"results","type":"vote_result","ref":"1","ref":"2","status":"x","status":200}`,
			want: wsAnswer{typ: []byte("vote_result"), ref: 2, refOK: true, hasRef: true, status: 200, statusOK: true}},
		{name: "a ref not ours", data: `{"type":"vote_result","ref":"007","status":202}`,
			want: wsAnswer{typ: []byte("vote_result"), hasRef: true, status: 202, statusOK: true}},
		{name: "a numeric ref", data: `{"type":"vote_result","ref":7,"status":202}`,
			want: wsAnswer{typ: []byte("vote_result"), status: 202, statusOK: true}},
		{name: "no status", data: `{"type":"vote_result","ref":"7"}`,
			want: wsAnswer{typ: []byte("vote_result"), ref: 7, refOK: true, hasRef: true}},
		{name: "a status not an integer", data: `{"type":"vote_result","ref":"7","status":202.5}`,
			want: wsAnswer{typ: []byte("vote_result"), ref: 7, refOK: true, hasRef: true}},
		{name: "empty object", data: `{}`},
		{name: "cut", data: `{"type":"vote_result","ref":"7","sta`, wantErr: true},
		{name: "not an object", data: `["type","vote_result"]`, wantErr: true},
		{name: "not JSON", data: `vote_result 7 202`, wantErr: true},
		{name: "empty", data: ``, wantErr: true},
		{name: "trailing bytes", data: `{"type":"vote_result"} x`, wantErr: true},
		{name: "a missing comma", data: `{"type":"vote_result" "ref":"1"}`, wantErr: true},
		{name: "a missing value", data: `{"type":"vote_result","ref":}`, wantErr: true},
		{name: "an unclosed string", data: `{"type":"vote_result","code":"oops}`, wantErr: true},
		{name: "a bad escape", data: `{"type":"vote_result","code":"\q"}`, wantErr: true},
		{name: "an unbalanced value", data: `{"type":"results","options":[{"id":"a"]}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := scanAnswer([]byte(tt.data))
			if (err != nil) != tt.wantErr {
				t.Fatalf("error %v, want one: %v", err, tt.wantErr)
			}
			if err == nil && describeAnswer(got) != describeAnswer(tt.want) {
				t.Errorf("scanAnswer = %s\nwant %s", describeAnswer(got), describeAnswer(tt.want))
			}
		})
	}
}

func describeAnswer(a wsAnswer) string {
	return fmt.Sprintf("type %q (nil %v) ref %d (ok %v, string %v) status %d (ok %v) code %q (nil %v)",
		a.typ, a.typ == nil, a.ref, a.refOK, a.hasRef, a.status, a.statusOK, a.code, a.code == nil)
}

// FuzzWSScanAnswer checks scanAnswer against encoding/json decoding
// into a map: what JSON accepts the scanner reads the same way.
func FuzzWSScanAnswer(f *testing.F) {
	for _, s := range []string{
		`{"type":"vote_result","ref":"17","status":202,"vote_id":"v-1"}`,
		`{"type":"vote_result","ref":"3","status":429,"code":"rate_limited","detail":"x"}`,
		`{"type":"results","total":3,"options":[{"id":"a","votes":2}]}`,
		`{"t\u0079pe":"vote\u005fresult","ref":"1\u0032","status":503}`,
		`{"type":null,"ref":1,"status":"202","code":[]}`,
		`{"status":2e2}`, `{}`, `[]`, `"x"`, `{"a":{"b":[1,2,{"c":"]"}]}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := scanAnswer(data) // must not panic, whatever the input
		var m map[string]any
		if json.Unmarshal(data, &m) != nil || m == nil || !utf8.Valid(data) {
			return // not a JSON object (or one JSON mends): the scanner may take it or not
		}
		if err != nil {
			t.Fatalf("scanAnswer: %v, but JSON is %v", err, m)
		}
		str := func(key string) (string, bool) { s, ok := m[key].(string); return s, ok }
		if s, ok := str("type"); string(got.typ) != s || !ok && got.typ != nil {
			t.Errorf("type %q, JSON %#v", got.typ, m["type"])
		}
		if s, ok := str("code"); string(got.code) != s || !ok && got.code != nil {
			t.Errorf("code %q, JSON %#v", got.code, m["code"])
		}
		ref, isStr := str("ref")
		if got.hasRef != isStr || got.refOK && strconv.FormatInt(got.ref, 10) != ref {
			t.Errorf("ref %d (%v, %v), JSON %#v", got.ref, got.refOK, got.hasRef, m["ref"])
		}
		if n, err := strconv.ParseInt(ref, 10, 64); isStr && err == nil && n > 0 && ref == strconv.FormatInt(n, 10) && len(ref) <= 18 && !got.refOK {
			t.Errorf("ref %q not read", ref)
		}
		if st, ok := m["status"].(float64); got.statusOK && (!ok || st != float64(got.status)) {
			t.Errorf("status %d, JSON %#v", got.status, m["status"])
		}
	})
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
