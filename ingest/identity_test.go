package ingest

import (
	"strings"
	"testing"
)

func TestParseVoteID(t *testing.T) {
	id := voteID{0: 1, 7: 0xfe, 15: 0xff}
	got, err := parseVoteID(id.String())
	if err != nil || got != id {
		t.Fatalf("parseVoteID(%q) = %x, %v; want %x", id.String(), got, err, id)
	}
	s := id.String()
	for _, bad := range []string{
		"", "AAAA", s[:21], s + "A", s + "AA",
		s[:10] + "\n" + s[11:],     // a newline the decoder would skip: 15 bytes
		s[:10] + "+" + s[11:],      // not the URL alphabet
		s[:20] + "==",              // padding
		strings.Repeat("\xff", 22), // not base64 at all
	} {
		if got, err := parseVoteID(bad); err == nil {
			t.Errorf("parseVoteID(%q) = %x, want an error", bad, got)
		}
	}
	if a := testing.AllocsPerRun(100, func() { _, _ = parseVoteID(s) }); a != 0 {
		t.Fatalf("parseVoteID allocates %v times", a)
	}
}
