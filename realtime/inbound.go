package realtime

import (
	"encoding/json"

	"github.com/pollcast/pollcast/internal/jsonscan"
)

// decodeInbound decodes a client's message into in exactly as
// json.Unmarshal would, and several times faster for the messages clients
// send: a fast path (jsonscan) handles objects with the documented keys
// spelt as documented, strings, arrays of strings and null; anything else
// (another key, an escape in a key, a number, ...) is decoded again by
// json.Unmarshal, which gives the value or the error it always gave.
// FuzzDecodeInbound compares the two on arbitrary input.
func decodeInbound(data []byte, in *inbound) error {
	var s jsonscan.Scanner
	s.Reset(data)
	if scanInbound(&s, in) {
		return nil
	}
	// A variable of its own, so that only this path moves one to the heap.
	var slow inbound
	err := json.Unmarshal(data, &slow)
	*in = slow
	return err
}

// scanInbound is the fast path of decodeInbound: it reports whether it
// handled data.
func scanInbound(s *jsonscan.Scanner, in *inbound) bool {
	return s.Object(func(key []byte) bool {
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
		default:
			// json.Unmarshal ignores unknown keys, but it also matches
			// known ones in any case: not handled.
			return false
		}
		return ok
	}) && s.End()
}
