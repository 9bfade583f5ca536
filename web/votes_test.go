package web

import (
	"bytes"
	"encoding/json"
	"testing"
)

// TestBatchResultsEncoding: a batch's answer is written by hand, and must
// be what writeJSON wrote before.
func TestBatchResultsEncoding(t *testing.T) {
	for _, results := range [][]batchResult{
		{},
		{{Status: 202, VoteID: "AAAAAAAAAAAAAAAAAAAAAA"}},
		{
			{Status: 202, VoteID: "k7Hq2mPz9c-_"},
			{Status: 409, Code: "already_voted", Detail: "this voter already voted in this poll"},
			{Status: 422, Code: "invalid", Detail: `votes[2].ip: not an IP address <"&\` + "\x00\n\u2028\xff>"},
			{Status: 403, Code: "forbidden", Detail: `this key does not own poll "x"`},
			{Status: 0},
		},
	} {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(true)
		if err := enc.Encode(map[string]any{"results": results}); err != nil {
			t.Fatal(err)
		}
		if got := appendBatchResults(nil, results); !bytes.Equal(got, want.Bytes()) {
			t.Errorf("appendBatchResults:\n got %s\nwant %s", got, want.Bytes())
		}
	}
}
