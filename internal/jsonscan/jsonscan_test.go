package jsonscan

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unsafe"
)

// FuzzString: String decodes every JSON string exactly as encoding/json
// does (escapes, surrogates, invalid UTF-8), and handles no document
// encoding/json rejects.
func FuzzString(f *testing.F) {
	for _, s := range []string{
		`""`, `"a"`, ` "bench-5f0c9d2e-1" `, `"\"\\\/\b\f\n\r\t"`, `"\u00e9\u20AC\ud83d\ude00"`,
		`"\ud83d"`, `"\ud83dx"`, `"\ude00\ud83d"`, `"\ud83d\u0041"`, `"\ud83d\ud83d\ude00"`, `"\ud83d\u12"`,
		`"\u12"`, `"\uzzzz"`, `"\'"`, `"\x"`, `"\`, `"a`, `a"`, `"a"b`, `"a" "b"`, `null`,
		"\"a\tb\"", "\"a\x7fb\"", "\"\xff\xfe\"", "\"\xed\xa0\x80\"", "\"caf\xc3\xa9 \xe2\x82\xac\"", "\"\xc3\"",
		"\"\xf0\x9f\x98\"", "\"\xc3\xa9\\n\xff\"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var want string
		wantErr := json.Unmarshal(data, &want)
		isString := wantErr == nil && bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte{'"'})
		var s Scanner
		s.Reset(data)
		b, ok := s.String()
		ok = ok && s.End()
		switch {
		case ok && wantErr != nil:
			t.Fatalf("%q: handled as %q, encoding/json: %v", data, b, wantErr)
		case ok && string(b) != want:
			t.Fatalf("%q: %q, encoding/json %q", data, b, want)
		case !ok && isString:
			t.Fatalf("%q: not handled, encoding/json decodes %q", data, want)
		}
	})
}

// FuzzMembers: walking any document as an object of strings never
// accepts what encoding/json rejects.
func FuzzMembers(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"a":"b"}`, `{"a":"b","c":["d",null]}`, `{"a":"b",}`, `{,}`, `{"a" "b"}`, `{"a":["b",]}`,
		`{"a":[,]}`, `{"a":[]}`, `{"a":null}`, `{"a":nul}`, `{"a":nulll}`, `{"\u0061":"b"}`, "{\"\x01\":\"b\"}",
		"{\"\xff\":\"b\"}", `{"a":"b"}x`, `{"a":"b"}}`, `[`, `{"a":`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var s Scanner
		s.Reset(data)
		if walkObject(&s) && s.End() && !json.Valid(data) {
			t.Fatalf("%q: handled, but not valid JSON", data)
		}
	})
}

// walkObject reads an object whose values are strings, null or arrays of
// strings and null.
func walkObject(s *Scanner) bool {
	if !s.Consume('{') {
		return false
	}
	for i := 0; ; i++ {
		_, end, ok := s.Member(i)
		if !ok {
			return false
		}
		if end {
			return true
		}
		switch {
		case s.Null():
		case s.Consume('['):
			for j := 0; ; j++ {
				end, ok := s.Element(j)
				if !ok {
					return false
				}
				if end {
					break
				}
				if !s.Null() {
					if _, ok := s.String(); !ok {
						return false
					}
				}
			}
		default:
			if _, ok := s.String(); !ok {
				return false
			}
		}
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", `<script>"\` + "\x00\x1f\b\f\n\r\t\x7f", "\xff\xfe\u2028\u2029é😀&", "\xed\xa0\x80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendString([]byte("x"), s); string(got) != "x"+string(want) {
			t.Fatalf("AppendString(%q) = %s, want %s", s, got[1:], want)
		}
	})
}

func TestStrings(t *testing.T) {
	same := []string{"a", "b"}
	for _, tc := range []struct {
		name   string
		doc    string
		want   []string
		wantOK bool
	}{
		{"null", `null`, nil, true},
		{"empty", `[]`, []string{}, true},
		{"strings", ` [ "a" , "b\u0063" ] `, []string{"a", "bc"}, true},
		{"null element", `["a",null]`, nil, false},
		{"number", `["a",1]`, nil, false},
		{"trailing comma", `["a",]`, nil, false},
		{"leading comma", `[,"a"]`, nil, false},
		{"no comma", `["a" "b"]`, nil, false},
		{"unterminated", `["a"`, nil, false},
		{"string", `"a"`, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s Scanner
			s.Reset([]byte(tc.doc))
			got, ok := s.Strings(same, nil)
			ok = ok && s.End()
			if ok != tc.wantOK {
				t.Fatalf("handled %v, want %v", ok, tc.wantOK)
			}
			if ok && (!reflect.DeepEqual(got, tc.want) || (got == nil) != (tc.want == nil)) {
				t.Fatalf("%#v, want %#v", got, tc.want)
			}
		})
	}
}

// TestStringsShares: elements equal to same's are same's strings, and
// elements are appended to dst.
func TestStringsShares(t *testing.T) {
	same := []string{strings.Clone("poll"), strings.Clone("x")}
	dst := make([]string, 1, 4)
	dst[0] = "before"
	var s Scanner
	s.Reset([]byte(`["poll","y"]`))
	got, ok := s.Strings(same, dst)
	if !ok || !reflect.DeepEqual(got, []string{"before", "poll", "y"}) {
		t.Fatalf("%q, %v", got, ok)
	}
	if unsafe.StringData(got[1]) != unsafe.StringData(same[0]) {
		t.Fatal("an element equal to same's is a copy")
	}
	if &got[0] != &dst[0] {
		t.Fatal("not appended to dst")
	}
}

// FuzzSkip: Skip handles exactly the documents json.Valid accepts, and
// Number exactly the numbers among them, returning their text.
func FuzzSkip(f *testing.F) {
	for _, s := range []string{
		`0`, `-0`, `12`, `-1.5e3`, `1E+2`, `1e-0`, `0.0`, `01`, `-`, `1.`, `.5`, `1e`, `1e+`, `+1`, `1.5.3`, `0x10`,
		`true`, `false`, `null`, `tru`, `nul`, `truex`, `"a"`, `"\u00e9\/"`, `"\q"`, "\"a\x01\"", "\"\xff\"",
		`{}`, `[]`, ` { "a" : [ 1 , true , null , { "b" : "c" } ] , "\u0061" : -2 } `, `{"a":1,}`, `[1,]`, `[,1]`,
		`{"a" 1}`, `{1:2}`, `[1 2]`, `{"a":1}}`, `[[[[]]]]`, `[`, `{"a":`, "\ufeff1", `"` + strings.Repeat("x", 40),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		valid := json.Valid(data)
		var s Scanner
		s.Reset(data)
		if ok := s.Skip() && s.End(); ok != valid {
			t.Fatalf("%q: Skip handled %v, json.Valid %v", data, ok, valid)
		}
		trimmed := bytes.Trim(data, " \t\r\n")
		isNumber := valid && len(trimmed) > 0 && (trimmed[0] == '-' || '0' <= trimmed[0] && trimmed[0] <= '9')
		s.Reset(data)
		b, ok := s.Number()
		if ok = ok && s.End(); ok != isNumber || ok && string(b) != string(trimmed) {
			t.Fatalf("%q: Number %q handled %v, a JSON number: %v", data, b, ok, isNumber)
		}
	})
}

func TestSkip(t *testing.T) {
	nested := func(n int) string { return strings.Repeat(`[{"a":`, n/2) + `1` + strings.Repeat(`}]`, n/2) }
	for _, tc := range []struct {
		name   string
		doc    string
		wantOK bool
	}{
		{"results", `{"type":"results","total":3,"options":[{"id":"a","votes":2.5e1}],"open":true,"x":null}`, true},
		{"escaped key", `{"t\u0079pe":"x"}`, true},
		{"invalid UTF-8", "[\"\xff\"]", true},
		{"as deep as encoding/json takes", nested(10000), true},
		{"deeper", nested(10002), false},
		{"leading zero", `[01]`, false},
		{"bare fraction", `[1.]`, false},
		{"literal run on", `[truex]`, false},
		{"control character", "[\"a\tb\"]", false},
		{"bad escape", `["\u12x4"]`, false},
		{"trailing comma", `{"a":1,}`, false},
		{"number key", `{1:1}`, false},
		{"unclosed", `{"a":[1`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !json.Valid([]byte(tc.doc)) == tc.wantOK {
				t.Fatalf("json.Valid disagrees with the test: %v", !tc.wantOK)
			}
			var s Scanner
			s.Reset([]byte(tc.doc))
			if ok := s.Skip() && s.End(); ok != tc.wantOK {
				t.Fatalf("handled %v, want %v", ok, tc.wantOK)
			}
		})
	}
}

// TestNumber: the text of a number comes back, and a failed Number
// consumes nothing but whitespace, so that the value can be read as
// another kind.
func TestNumber(t *testing.T) {
	var s Scanner
	s.Reset([]byte(` -12.5e+3 , "7" `))
	if b, ok := s.Number(); !ok || string(b) != "-12.5e+3" || !s.Consume(',') {
		t.Fatalf("%q %v", b, ok)
	}
	if b, ok := s.Number(); ok {
		t.Fatalf("a string read as the number %q", b)
	}
	if b, ok := s.String(); !ok || string(b) != "7" || !s.End() {
		t.Fatalf("after a failed Number: %q %v", b, ok)
	}
	s.Reset([]byte(`1.e5`))
	if b, ok := s.Number(); ok {
		t.Fatalf("%q read", b)
	}
	if s.pos != 0 {
		t.Fatalf("a failed Number moved to %d", s.pos)
	}
}
