package realtime

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	jsonv2 "github.com/go-json-experiment/json"
	jsonv1 "github.com/go-json-experiment/json/v1"
	segjson "github.com/segmentio/encoding/json"

	"github.com/pollcast/pollcast/internal/jsonscan/jsonscantest"
	"github.com/pollcast/pollcast/internal/testsvc"
)

// BenchmarkDecodeInbound weighs decodeInbound (jsonscan) against
// json.Unmarshal and the JSON libraries made to be faster than it;
// TestInboundDecoders checks that each decodes as json.Unmarshal does.
// It reports the process's CPU time per operation beside wall time: the
// steadier figure on a shared machine. Each decoder is called directly, as
// readLoop calls it, so that escape analysis sees what it sees there.
func BenchmarkDecodeInbound(b *testing.B) {
	data := []byte(benchInbound)
	run := func(name string, decode func() error) {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
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
	run("encoding_json", func() error {
		var in inbound
		return json.Unmarshal(data, &in)
	})
	run("jsonscan", func() error {
		var in inbound
		return decodeInbound(data, &in)
	})
	run("segmentio", func() error {
		var in inbound
		return segjson.Unmarshal(data, &in)
	})
	run("jsonv2", func() error {
		var in inbound
		return decodeInboundJSONv2(data, &in)
	})
	run("jsontext", func() error {
		var in inbound
		return decodeInboundText(data, &in)
	})
}

// decodeInboundJSONv2 decodes data with go-json-experiment/json, with the
// options that give encoding/json's semantics.
func decodeInboundJSONv2(data []byte, in *inbound) error {
	return jsonv2.Unmarshal(data, in, jsonv1.DefaultOptionsV1())
}

var textScanners = sync.Pool{New: func() any { return new(jsonscantest.TextScanner) }}

// decodeInboundText is decodeInbound with scanInbound written on jsontext.
func decodeInboundText(data []byte, in *inbound) error {
	s := textScanners.Get().(*jsonscantest.TextScanner)
	defer textScanners.Put(s)
	s.Reset(data)
	if s.Object(func(key []byte) bool {
		var ok bool
		switch string(key) {
		case "type":
			ok = s.StringInto(&in.Type, "vote")
		case "ref":
			ok = s.StringInto(&in.Ref, "")
		case "options":
			in.Options, ok = s.Strings(nil, nil)
		case "voter":
			ok = s.StringInto(&in.Voter, "")
		case "idempotency_key":
			ok = s.StringInto(&in.IdempotencyKey, "")
		}
		return ok
	}) && s.End() {
		return nil
	}
	var slow inbound
	err := json.Unmarshal(data, &slow)
	*in = slow
	return err
}

// TestInboundDecoders: each decoder the benchmark weighs agrees with
// json.Unmarshal on the fuzz seeds. segmentio/encoding/json has no limit
// on nesting: it accepts a message nested deeper than encoding/json's
// 10,000 levels, which json.Unmarshal rejects.
func TestInboundDecoders(t *testing.T) {
	for _, d := range []struct {
		name   string
		decode func([]byte, *inbound) error
	}{
		{"jsonscan", decodeInbound},
		{"segmentio", func(b []byte, in *inbound) error { return segjson.Unmarshal(b, in) }},
		{"jsonv2", decodeInboundJSONv2},
		{"jsontext", decodeInboundText},
	} {
		t.Run(d.name, func(t *testing.T) {
			for _, data := range inboundSeeds {
				var want, got inbound
				wantErr := json.Unmarshal([]byte(data), &want)
				gotErr := d.decode([]byte(data), &got)
				if d.name == "segmentio" && strings.Count(data, "[") > 10000 {
					if gotErr != nil || wantErr == nil {
						t.Errorf("%.40q: error %v, json.Unmarshal's %v; want segmentio to accept what json.Unmarshal rejects", data, gotErr, wantErr)
					}
					continue
				}
				if msg := inboundDiffers(data, got, want, gotErr, wantErr); msg != "" {
					t.Error(msg)
				}
			}
		})
	}
}

func inboundDiffers(data string, got, want inbound, gotErr, wantErr error) string {
	if (gotErr == nil) != (wantErr == nil) {
		return fmt.Sprintf("%.120q: error %v, json.Unmarshal's %v", data, gotErr, wantErr)
	}
	if wantErr == nil && !reflect.DeepEqual(got, want) {
		return fmt.Sprintf("%.120q: decoded %#v, json.Unmarshal %#v", data, got, want)
	}
	return ""
}
