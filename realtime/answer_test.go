package realtime

import (
	"bytes"
	"encoding/json"
	"testing"
)

func FuzzVoteResultJSON(f *testing.F) {
	f.Add("1", 202, "AAAAAAAAAAAAAAAAAAAAAA", "", "")
	f.Add(`<script>"\`+"\x00\x1f\b\f\n\r\t\x7f", 409, "", "already_voted", "this voter already voted in this poll")
	f.Add("\xff\xfe\u2028\u2029é😀&", 429, "", "rate_limited", "too many votes waiting on this connection")
	f.Add("", 0, "", "", "")
	f.Fuzz(func(t *testing.T, ref string, status int, voteID, code, detail string) {
		r := voteResult{Type: "vote_result", Ref: ref, Status: status, VoteID: voteID, Code: code, Detail: detail}
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.message().data; !bytes.Equal(got, want) {
			t.Fatalf("appendJSON:\n got %s\nwant %s", got, want)
		}
	})
}

func BenchmarkVoteResultJSON(b *testing.B) {
	r := voteResult{Type: "vote_result", Ref: "12345", Status: 202, VoteID: "AAAAAAAAAAAAAAAAAAAAAA"}
	b.Run("encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = encode("vote_result", r)
		}
	})
	b.Run("appendJSON", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = r.message()
		}
	})
}
