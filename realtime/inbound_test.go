package realtime

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/pollcast/pollcast/internal/jsonscan"

	"github.com/pollcast/pollcast/internal/jsonscan/jsonscantest"
)

// benchInbound is a vote as `pollcast bench ws` sends it (wsVoter.send in
// cmd/pollcast/bench_load.go).
const benchInbound = `{"type":"vote","ref":"4711","options":["a"],"voter":"bench-5f0c9d2e-100001"}`

var inboundSeeds = []string{
	benchInbound,
	`{"type":"vote","ref":"1","options":["a"],"voter":"d-5f0c9d2e","idempotency_key":"9d8e7f6a"}`,
	`{"type":"vote","ref":"2","options":["a","c"]}`,
	`{"type":"ping"}`, `{"type":"vote","ref":"1","options":["a"],"extra":{"x":[1,2,3]}}`,
	``, ` `, `null`, `{}`, `[]`, `""`, `1`, `{`, `}`, `{"options":`,
	"\ufeff{}",                                       // BOM: rejected
	`{} `, "{}\n\t\r ", `{}{}`, `{} x`, `{}]`, `{},`, // trailing data
	`{"ref":"a",}`, `{,"ref":"a"}`, `{"ref":"a" "voter":"b"}`, // commas
	`{"ref":"a","ref":"b"}`, `{"ref":"a","ref":null}`, `{"type":"vote","type":"Vote"}`, // duplicates, null
	`{"options":["a"],"options":null}`, `{"options":["a","b"],"options":["c"]}`,
	`{"options":["a","b"],"options":["c",null]}`, `{"options":[null]}`, `{"options":[]}`,
	`{"options":null}`, `{"options":"a"}`, `{"options":[1]}`, `{"options":[["a"]]}`,
	`{"options":["a",]}`, `{"options":[,"a"]}`, `{"options":["a""b"]}`,
	`{"ref":1}`, `{"ref":1e999}`, `{"ref":true}`, `{"ref":{}}`, `{"ref":[]}`,
	`{"ref":123456789012345678901234567890}`, `{"ref":-0.5e-7}`, `{"x":1e999}`, `{"x":01}`,
	`{"Type":"vote"}`, `{"TYPE":"vote","type":"x"}`, `{"type":"x","TYPE":"vote"}`,
	`{"OPTIONS":["a"]}`, `{"Idempotency_Key":"k"}`, "{\"idempotency_\u212aey\":\"k\"}", // Kelvin sign
	"{\"option\u017f\":[\"a\"]}", // long s
	`{"typ\u0065":"vote"}`, `{"type\u0000":"vote"}`, `{"VoteMessage":{"ref":"1"}}`,
	`{"unknown":{"a":[[[[[[[[[[{"b":null}]]]]]]]]]]}}`,
	`{"x":` + strings.Repeat(`[`, 10001) + strings.Repeat(`]`, 10001) + `}`,
	`{"voter":"\"\\\/\b\f\n\r\t"}`, `{"voter":"\u00e9\u20ac\ud83d\ude00"}`,
	`{"voter":"\ud83d"}`, `{"voter":"\ud83dx"}`, `{"voter":"\ude00\ud83d"}`, `{"voter":"\ud83d\u0041"}`,
	`{"voter":"\ud83d\ud83d\ude00"}`, `{"voter":"\u12"}`, `{"voter":"\uzzzz"}`, `{"voter":"\'"}`,
	`{"voter":"\x"}`, `{"voter":"\`, `{"voter":"a`, `{"voter":"a"`, `{"voter"`, `{"voter":}`,
	"{\"voter\":\"a\tb\"}", "{\"voter\":\"a\x7fb\"}", "{\"voter\":\"\xff\xfe\"}", "{\"voter\":\"\xed\xa0\x80\"}",
	"{\"voter\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"}", "{\"voter\":\"\xc3\"}",
	"{\"\xff\":1}", "{\"v\xc3\xa9\":\"a\"}",
	` { "type" : "vote" , "options" : [ "a" , "b" ] } `, "{\n\t\"type\"\r:\n\"vote\"}",
	`{"ref":nul}`, `{"ref":nulll}`, `{"ref":null1}`, `{"ref":NULL}`,
}

// checkInbound fails t unless decodeInbound and json.Unmarshal agree on
// data, and the fast path, when it handles data, agrees too.
func checkInbound(t *testing.T, data []byte) {
	t.Helper()
	var want, got, fast inbound
	wantErr := json.Unmarshal(data, &want)
	var s jsonscan.Scanner
	s.Reset(data)
	if scanInbound(&s, &fast) {
		if wantErr != nil {
			t.Fatalf("%q: fast path accepts, json.Unmarshal: %v", data, wantErr)
		}
		if !reflect.DeepEqual(fast, want) {
			t.Fatalf("%q: fast path\n%#v\njson.Unmarshal\n%#v", data, fast, want)
		}
	}
	gotErr := decodeInbound(data, &got)
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("%q: error %v, json.Unmarshal's %v", data, gotErr, wantErr)
	}
	if wantErr == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("%q: decoded\n%#v\njson.Unmarshal\n%#v", data, got, want)
	}
}

// FuzzDecodeInbound: decodeInbound agrees with json.Unmarshal on any
// message, and its fast path accepts only what json.Unmarshal accepts,
// with equal values. Each input is tried as it is and as docFromBytes
// builds a document from it.
func FuzzDecodeInbound(f *testing.F) {
	for _, s := range inboundSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkInbound(t, data)
		checkInbound(t, jsonscantest.DocFromBytes(data))
	})
}

// TestDecodeInboundSeeds runs the fuzz seeds, and checks that the votes
// clients send take the fast path.
func TestDecodeInboundSeeds(t *testing.T) {
	for _, data := range inboundSeeds {
		checkInbound(t, []byte(data))
	}
	for _, data := range inboundSeeds[:3] {
		var s jsonscan.Scanner
		s.Reset([]byte(data))
		if !scanInbound(&s, new(inbound)) {
			t.Errorf("%s: not handled by the fast path", data)
		}
	}
}

// TestDecodeInboundCopies: the message decoded keeps nothing of data,
// which readLoop reuses for the next message.
func TestDecodeInboundCopies(t *testing.T) {
	for _, msg := range []string{benchInbound, `{"type":"vote","ref":"1","options":["a\u00e9b"],"voter":"v\"1","idempotency_key":"k"}`} {
		data := []byte(msg)
		var in inbound
		if err := decodeInbound(data, &in); err != nil {
			t.Fatal(err)
		}
		var want inbound
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatal(err)
		}
		for i := range data {
			data[i] = 'x'
		}
		if !reflect.DeepEqual(in, want) {
			t.Fatalf("%s: after data changed\n%#v\nwant\n%#v", msg, in, want)
		}
	}
}
