package ingest

import (
	"crypto/hmac"
	"crypto/sha256"
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

// BenchmarkSum16: the keyed hash behind every voter key and idempotency key.
func BenchmarkSum16(b *testing.B) {
	h := newHasher([]byte("0123456789abcdef0123456789abcdef"))
	b.ReportAllocs()
	for b.Loop() {
		_ = h.sum16("device", "k7Hq2mPz9c12", "v-1234567890-abcdefgh")
	}
}

// TestSum16IsHMAC: voter keys are written to the log, so the hash must
// stay HMAC-SHA256 of the parts joined by 0 bytes, whatever the buffers.
func TestSum16IsHMAC(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	h := newHasher(secret)
	for _, c := range [][3]string{{"device", "p1", "v1"}, {"ip", "pollpollpoll", "10.0.0.0/24"}, {"idem", "", ""}, {"token", "p", string(make([]byte, 5000))}} {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(c[0] + "\x00" + c[1] + "\x00" + c[2]))
		var want [16]byte
		copy(want[:], m.Sum(nil))
		for range 2 {
			if got := h.sum16(c[0], c[1], c[2]); got != want {
				t.Fatalf("%q: %x, want %x", c, got, want)
			}
		}
	}
}
