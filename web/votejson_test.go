package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/pollcast/pollcast/internal/jsonscan"
	"github.com/pollcast/pollcast/internal/testsvc"
	"github.com/pollcast/pollcast/poll"

	"github.com/pollcast/pollcast/internal/jsonscan/jsonscantest"
)

// decodeReference decodes body the way decodeJSON always did, with
// encoding/json alone: the behaviour unmarshalVote and unmarshalBatch must
// match.
func decodeReference(body []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("data after the first value")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("data after the first value")
	}
	return nil
}

// benchBatch is a batch body as `pollcast bench batch` sends it
// (votePrefix and appendVote in cmd/pollcast/bench_load.go).
func benchBatch(n int) []byte {
	body := []byte(`{"votes":[`)
	for i := range n {
		if i > 0 {
			body = append(body, ',')
		}
		body = fmt.Appendf(body, `{"poll_id":"k7Hq2mPz9cX4","options":["a"],"voter":"bench-5f0c9d2e-%d"}`, 100000+i)
	}
	return append(body, "]}"...)
}

// jsonEdgeCases are bodies every decoder's corpus starts with: each is
// something encoding/json treats in a particular way.
var jsonEdgeCases = []string{
	``, ` `, `null`, `{}`, `[]`, `""`, `1`, `{`, `}`, `{"options":`,
	"\ufeff{}",                                       // BOM: rejected
	`{} `, "{}\n\t\r ", `{}{}`, `{} x`, `{}]`, `{},`, // trailing data
	`{"voter":"a",}`, `{,"voter":"a"}`, `{"voter":"a" "referrer":"b"}`, // commas
	`{"voter":"a","voter":"b"}`, `{"voter":"a","voter":null}`, // duplicates, null
	`{"options":["a"],"options":null}`, `{"options":["a","b"],"options":["c"]}`,
	`{"options":["a","b"],"options":["c",null]}`, `{"options":[null]}`, `{"options":[]}`,
	`{"options":null}`, `{"options":"a"}`, `{"options":[1]}`, `{"options":[["a"]]}`,
	`{"options":["a",]}`, `{"options":[,"a"]}`, `{"options":["a""b"]}`,
	`{"voter":1}`, `{"voter":1e999}`, `{"voter":true}`, `{"voter":{}}`, `{"voter":[]}`,
	`{"voter":123456789012345678901234567890}`, `{"voter":-0.5e-7}`,
	`{"Voter":"a"}`, `{"VOTER":"a","voter":"b"}`, `{"voter":"b","VOTER":"a"}`,
	`{"OPTIONS":["a"]}`, `{"Idempotency_Key":"k"}`, "{\"idempotency_\u212aey\":\"k\"}", // Kelvin sign
	"{\"opt\u017fions\":[\"a\"]}", // long s
	`{"vot\u0065r":"a"}`, `{"voter\u0000":"a"}`,
	`{"unknown":1}`, `{"unknown":{"a":[[[[[[[[[[{"b":null}]]]]]]]]]]}}`,
	`{"x":` + strings.Repeat(`[`, 10001) + strings.Repeat(`]`, 10001) + `}`,
	`{"voter":"\"\\\/\b\f\n\r\t"}`, `{"voter":"\u00e9\u20ac\ud83d\ude00"}`,
	`{"voter":"\ud83d"}`, `{"voter":"\ud83dx"}`, `{"voter":"\ude00\ud83d"}`, `{"voter":"\ud83d\u0041"}`,
	`{"voter":"\ud83d\ud83d\ude00"}`, `{"voter":"\u12"}`, `{"voter":"\uzzzz"}`, `{"voter":"\'"}`,
	`{"voter":"\x"}`, `{"voter":"\`, `{"voter":"a`, `{"voter":"a"`, `{"voter"`, `{"voter":}`,
	"{\"voter\":\"a\tb\"}", "{\"voter\":\"a\x7fb\"}", "{\"voter\":\"\xff\xfe\"}", "{\"voter\":\"\xed\xa0\x80\"}",
	"{\"voter\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"}", "{\"voter\":\"\xc3\"}",
	"{\"\xff\":1}", "{\"v\xc3\xa9\":\"a\"}",
	` { "voter" : "a" , "options" : [ "a" , "b" ] } `, "{\n\t\"voter\"\r:\n\"a\"}",
	`{"voter":nul}`, `{"voter":nulll}`, `{"voter":null1}`, `{"voter":NULL}`,
	`{"referrer":"https://news.example.com/a?b=1\u0026c=2","idempotency_key":"9d8e"}`,
}

var voteSeeds = append([]string{
	`{"options":["a"],"voter":"d-5f0c9d2e","idempotency_key":"9d8e7f6a5b4c"}`,
	`{"options":["a"],"voter":"bench-5f0c9d2e-100001"}`,
	`{"options":["a","c"],"voter":"d-5f0c","idempotency_key":"9d8e","referrer":"news.example.com"}`,
	`{"options":["a"],"voter":"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1MSJ9.sig"}`,
}, jsonEdgeCases...)

var batchSeeds = append([]string{
	string(benchBatch(3)),
	`{"votes":[{"poll_id":"k7Hq2mPz9c","options":["a"],"voter":"v1","idempotency_key":"k1"},` +
		`{"poll_id":"k7Hq2mPz9c","options":["b","c"],"voter":"v2","referrer":"news.example.com","ip":"192.0.2.1"},` +
		`{"poll_id":"Zz9c","options":["a"],"voter":"v3","ip":"2001:db8::1"}]}`,
	`{"votes":[]}`, `{"votes":null}`, `{"votes":[null]}`, `{"votes":[{}]}`, `{"votes":[{},]}`,
	`{"votes":[{"poll_id":"p"}],"votes":[{"voter":"v"}]}`, `{"votes":[{"options":["a","b"]},{"options":["a"]}]}`,
	`{"votes":[{"options":null},{"options":[]},{"options":["a"],"options":null}]}`,
	`{"votes":[{"poll_id":"p","poll_id":null}]}`, `{"votes":[{"POLL_ID":"p"}]}`, `{"Votes":[]}`,
	`{"votes":[{"ip":1}]}`, `{"votes":[{"extra":1}]}`, `{"votes":{}}`, `{"votes":"a"}`, `{"votes":[[]]}`,
	`{"votes":[{"voter":"\u00e9"},{"voter":"\u00e9"}]}`,
}, jsonEdgeCases...)

// checkSame fails t when got and gotErr differ from what encoding/json
// gives (want, wantErr): both accept with deep-equal values, or both
// reject.
func checkSame(t *testing.T, body []byte, got, want any, gotErr, wantErr error) {
	t.Helper()
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("%q: error %v, encoding/json's %v", body, gotErr, wantErr)
	}
	if wantErr == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("%q: decoded\n%#v\nencoding/json\n%#v", body, got, want)
	}
	if gotErr != nil && len(gotErr.Error()) > 300 {
		t.Fatalf("%q: error of %d bytes", body, len(gotErr.Error()))
	}
}

// FuzzDecodeVote: unmarshalVote agrees with encoding/json on any body, and
// its fast path accepts only what encoding/json accepts, with equal values.
// Each input is tried as it is and as docFromBytes builds a document from
// it.
func FuzzDecodeVote(f *testing.F) {
	for _, s := range voteSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, body := range [][]byte{data, jsonscantest.DocFromBytes(data)} {
			var want, got, fast voteInput
			wantErr := decodeReference(body, &want)
			var s jsonscan.Scanner
			s.Reset(body)
			if scanVote(&s, &fast) {
				checkSame(t, body, fast, want, nil, wantErr)
			}
			checkSame(t, body, got, want, unmarshalVote(body, &got), wantErr)
		}
	})
}

// FuzzDecodeBatch: unmarshalBatch agrees with encoding/json on any body,
// and its fast path accepts only what encoding/json accepts, with equal
// values. Each input is tried as it is and as docFromBytes builds a
// document from it.
func FuzzDecodeBatch(f *testing.F) {
	for _, s := range batchSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, body := range [][]byte{data, jsonscantest.DocFromBytes(data)} {
			var want, got, fast batchInput
			wantErr := decodeReference(body, &want)
			var s jsonscan.Scanner
			s.Reset(body)
			if scanBatch(&s, body, &fast) {
				checkSame(t, body, fast, want, nil, wantErr)
			}
			checkSame(t, body, got, want, unmarshalBatch(body, &got), wantErr)
		}
	})
}

// TestDecodeVoteSeeds runs the fuzz seeds, and checks that the bodies
// clients send take the fast path.
func TestDecodeVoteSeeds(t *testing.T) {
	for _, body := range voteSeeds {
		var want, got voteInput
		checkSame(t, []byte(body), got, want, unmarshalVote([]byte(body), &got), decodeReference([]byte(body), &want))
	}
	for _, body := range voteSeeds[:4] {
		var s jsonscan.Scanner
		s.Reset([]byte(body))
		if !scanVote(&s, new(voteInput)) {
			t.Errorf("%s: not handled by the fast path", body)
		}
	}
}

func TestDecodeBatchSeeds(t *testing.T) {
	for _, body := range batchSeeds {
		var want, got batchInput
		checkSame(t, []byte(body), got, want, unmarshalBatch([]byte(body), &got), decodeReference([]byte(body), &want))
	}
	for _, body := range []string{batchSeeds[0], batchSeeds[1], string(benchBatch(1000))} {
		var s jsonscan.Scanner
		s.Reset([]byte(body))
		if !scanBatch(&s, []byte(body), new(batchInput)) {
			t.Errorf("%.100s: not handled by the fast path", body)
		}
	}
}

// TestDecodeBatchSharesOptions: the options of a batch's votes share a
// backing array, but appending to one vote's never changes another's.
func TestDecodeBatchSharesOptions(t *testing.T) {
	var in batchInput
	if err := unmarshalBatch([]byte(`{"votes":[{"options":["a","b"]},{"options":["c"]}]}`), &in); err != nil {
		t.Fatal(err)
	}
	_ = append(in.Votes[0].Options, "x")
	if got := in.Votes[1].Options; !reflect.DeepEqual(got, []string{"c"}) {
		t.Fatalf("second vote's options %q after appending to the first's", got)
	}
}

// BenchmarkReadBatch reads a batch body as decodeBatch does:
// "io_ReadAll" the baseline, "sized" with readAll's first buffer of the
// Content-Length.
func BenchmarkReadBatch(b *testing.B) {
	body := benchBatch(1000)
	read := func(b *testing.B, readAll func(io.Reader, int64) ([]byte, error)) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		w := httptest.NewRecorder()
		cpu := testsvc.CPUTime()
		for b.Loop() {
			r := httptest.NewRequest(http.MethodPost, "/v1/votes/batch", bytes.NewReader(body))
			got, err := readAll(http.MaxBytesReader(w, r.Body, maxBatchBody), r.ContentLength)
			if err != nil || len(got) != len(body) {
				b.Fatal(len(got), err)
			}
		}
		b.ReportMetric(float64(testsvc.CPUTime()-cpu)/float64(b.N), "cpu-ns/op")
	}
	b.Run("io_ReadAll", func(b *testing.B) {
		read(b, func(r io.Reader, _ int64) ([]byte, error) { return io.ReadAll(r) })
	})
	b.Run("sized", func(b *testing.B) { read(b, readAll) })
}

// TestReadBodyLimits: the sized read keeps the 413 of a body over the
// limit, announced or not, and reads bodies whole.
func TestReadBodyLimits(t *testing.T) {
	for _, tc := range []struct {
		name    string
		size    int
		length  int64 // the Content-Length; -1 unknown
		wantErr error
	}{
		{"announced", 1000, 1000, nil},
		{"unknown length", 1000, -1, nil},
		{"empty", 0, 0, nil},
		{"at the limit", maxBatchBody, maxBatchBody, nil},
		{"over, announced", maxBatchBody + 1, maxBatchBody + 1, poll.ErrBodyTooLarge},
		{"over, unknown length", maxBatchBody + 1, -1, poll.ErrBodyTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := bytes.Repeat([]byte{' '}, tc.size)
			c, _ := gin.CreateTestContext(httptest.NewRecorder())
			c.Request = httptest.NewRequest(http.MethodPost, "/v1/votes/batch", bytes.NewReader(body))
			c.Request.ContentLength = tc.length
			got, err := readBody(c, maxBatchBody, true)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("error %v, want %v", err, tc.wantErr)
			}
			if err == nil && !bytes.Equal(got, body) {
				t.Fatalf("read %d bytes of %d", len(got), len(body))
			}
		})
	}
}
