package web

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"

	jsonv2 "github.com/go-json-experiment/json"
	jsonv1 "github.com/go-json-experiment/json/v1"
	segjson "github.com/segmentio/encoding/json"

	"github.com/pollcast/pollcast/internal/jsonscan/jsonscantest"
	"github.com/pollcast/pollcast/internal/testsvc"
)

// voteDecoder is one way to decode the vote and batch bodies.
// BenchmarkDecodeVote and BenchmarkDecodeBatch weigh jsonscan
// (unmarshalVote and unmarshalBatch) against encoding/json and the JSON
// libraries made to be faster than it; TestVoteDecoders checks that each
// decodes as decodeReference does.
type voteDecoder struct {
	name  string
	vote  func([]byte, *voteInput) error
	batch func([]byte, *batchInput) error
}

var voteDecoders = []voteDecoder{
	{"encoding_json", func(b []byte, in *voteInput) error { return unmarshalBody(b, in) },
		func(b []byte, in *batchInput) error { return unmarshalBody(b, in) }},
	{"jsonscan", unmarshalVote, unmarshalBatch},
	{"segmentio", func(b []byte, in *voteInput) error { return decodeSegmentio(b, in) },
		func(b []byte, in *batchInput) error { return decodeSegmentio(b, in) }},
	{"jsonv2", func(b []byte, in *voteInput) error { return decodeJSONv2(b, in) },
		func(b []byte, in *batchInput) error { return decodeJSONv2(b, in) }},
	{"jsontext", unmarshalVoteText, unmarshalBatchText},
}

// decodeSegmentio decodes body with segmentio/encoding/json, unknown
// fields refused and data after the value rejected as unmarshalBody does.
func decodeSegmentio(body []byte, dst any) error {
	rest, err := segjson.Parse(body, dst, segjson.DisallowUnknownFields)
	if err == nil && len(rest) != 0 {
		err = errors.New("data after the first value")
	}
	return err
}

// decodeJSONv2 decodes body with go-json-experiment/json, with the options
// that give encoding/json's semantics (case-insensitive names, duplicate
// names, invalid UTF-8, merging into existing values) and unknown members
// refused.
func decodeJSONv2(body []byte, dst any) error {
	return jsonv2.Unmarshal(body, dst, jsonv1.DefaultOptionsV1(), jsonv2.RejectUnknownMembers(true))
}

var textScanners = sync.Pool{New: func() any { return new(jsonscantest.TextScanner) }}

// unmarshalVoteText is unmarshalVote with scanVote written on jsontext.
func unmarshalVoteText(body []byte, in *voteInput) error {
	s := textScanners.Get().(*jsonscantest.TextScanner)
	defer textScanners.Put(s)
	s.Reset(body)
	if s.Object(func(key []byte) bool {
		var ok bool
		switch string(key) {
		case "options":
			in.Options, ok = s.Strings(nil, nil)
		case "voter":
			ok = s.StringInto(&in.Voter, "")
		case "idempotency_key":
			ok = s.StringInto(&in.IdempotencyKey, "")
		case "referrer":
			ok = s.StringInto(&in.Referrer, "")
		}
		return ok
	}) && s.End() {
		return nil
	}
	var slow voteInput
	err := unmarshalBody(body, &slow)
	*in = slow
	return err
}

// unmarshalBatchText is unmarshalBatch with scanBatch written on jsontext.
func unmarshalBatchText(body []byte, in *batchInput) error {
	s := textScanners.Get().(*jsonscantest.TextScanner)
	defer textScanners.Put(s)
	s.Reset(body)
	if s.Object(func(key []byte) bool {
		if string(key) != "votes" || in.Votes != nil {
			return false
		}
		n := min(bytes.Count(body, []byte{'{'}), maxBatchVotes+1)
		votes := make([]batchItem, 0, n)
		opts := make([]string, 0, n)
		ok := s.Array(func() bool {
			p := &batchItem{}
			if len(votes) > 0 {
				p = &votes[len(votes)-1]
			}
			votes = append(votes, batchItem{})
			v := &votes[len(votes)-1]
			return s.Object(func(key []byte) bool {
				var ok bool
				switch string(key) {
				case "poll_id":
					ok = s.StringInto(&v.PollID, p.PollID)
				case "options":
					var o []string
					o, ok = s.Strings(p.Options, opts)
					if ok && o != nil {
						v.Options = o[len(opts):len(o):len(o)]
						opts = o
					} else {
						v.Options = nil
					}
				case "voter":
					ok = s.StringInto(&v.Voter, "")
				case "idempotency_key":
					ok = s.StringInto(&v.IdempotencyKey, "")
				case "referrer":
					ok = s.StringInto(&v.Referrer, p.Referrer)
				case "ip":
					ok = s.StringInto(&v.IP, p.IP)
				}
				return ok
			})
		})
		in.Votes = votes
		return ok
	}) && s.End() {
		return nil
	}
	var slow batchInput
	err := unmarshalBody(body, &slow)
	*in = slow
	return err
}

// TestVoteDecoders: each decoder accepts what decodeReference accepts,
// with equal values, on the fuzz seeds.
func TestVoteDecoders(t *testing.T) {
	for _, d := range voteDecoders {
		t.Run(d.name, func(t *testing.T) {
			for _, body := range voteSeeds {
				var want, got voteInput
				if msg := differs([]byte(body), &got, &want, d.vote([]byte(body), &got), decodeReference([]byte(body), &want)); msg != "" {
					t.Error("vote " + msg)
				}
			}
			for _, body := range batchSeeds {
				var want, got batchInput
				if msg := differs([]byte(body), &got, &want, d.batch([]byte(body), &got), decodeReference([]byte(body), &want)); msg != "" {
					t.Error("batch " + msg)
				}
			}
		})
	}
}

// differs describes how a decoder's value and error differ from
// decodeReference's, or returns "".
func differs(body []byte, got, want any, gotErr, wantErr error) string {
	if (gotErr == nil) != (wantErr == nil) {
		return fmt.Sprintf("%.120q: error %v, encoding/json's %v", body, gotErr, wantErr)
	}
	if wantErr == nil && !reflect.DeepEqual(got, want) {
		return fmt.Sprintf("%.120q: decoded %#v, encoding/json %#v", body, got, want)
	}
	return ""
}

// benchDecode runs decode in a sub-benchmark called name, reporting the
// process's CPU time per operation beside wall time: the steadier figure
// on a shared machine.
func benchDecode(b *testing.B, name string, size int, decode func() error) {
	b.Run(name, func(b *testing.B) {
		b.SetBytes(int64(size))
		b.ReportAllocs()
		cpu := testsvc.CPUTime()
		for b.Loop() {
			if err := decode(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(testsvc.CPUTime()-cpu)/float64(b.N), "cpu-ns/op")
	})
}

// BenchmarkDecodeBatch and BenchmarkDecodeVote call each decoder directly,
// as the handlers do, so that escape analysis sees what it sees there (a
// call through a function value would move the decoded value to the heap).
func BenchmarkDecodeBatch(b *testing.B) {
	body := benchBatch(1000)
	check := func(in *batchInput, err error) error {
		if err == nil && len(in.Votes) != 1000 {
			err = fmt.Errorf("%d votes", len(in.Votes))
		}
		return err
	}
	benchDecode(b, "encoding_json", len(body), func() error {
		var in batchInput
		return check(&in, unmarshalBody(body, &in))
	})
	benchDecode(b, "jsonscan", len(body), func() error {
		var in batchInput
		return check(&in, unmarshalBatch(body, &in))
	})
	benchDecode(b, "segmentio", len(body), func() error {
		var in batchInput
		return check(&in, decodeSegmentio(body, &in))
	})
	benchDecode(b, "jsonv2", len(body), func() error {
		var in batchInput
		return check(&in, decodeJSONv2(body, &in))
	})
	benchDecode(b, "jsontext", len(body), func() error {
		var in batchInput
		return check(&in, unmarshalBatchText(body, &in))
	})
}

func BenchmarkDecodeVote(b *testing.B) {
	body := []byte(voteSeeds[0])
	benchDecode(b, "encoding_json", len(body), func() error {
		var in voteInput
		return unmarshalBody(body, &in)
	})
	benchDecode(b, "jsonscan", len(body), func() error {
		var in voteInput
		return unmarshalVote(body, &in)
	})
	benchDecode(b, "segmentio", len(body), func() error {
		var in voteInput
		return decodeSegmentio(body, &in)
	})
	benchDecode(b, "jsonv2", len(body), func() error {
		var in voteInput
		return decodeJSONv2(body, &in)
	})
	benchDecode(b, "jsontext", len(body), func() error {
		var in voteInput
		return unmarshalVoteText(body, &in)
	})
}
