package ingest

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pollcast/pollcast/poll"
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

// TestVoterTokenExpiry: a voter token must carry an exp after now and at
// most the configured lifetime ahead of it (plus a minute of clock skew);
// each refusal says which rule the token broke.
func TestVoterTokenExpiry(t *testing.T) {
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	p := &poll.Poll{ID: "k7Hq2mPz9c12", Dedupe: poll.DedupeToken, VoterSecret: "the-poll-secret"}
	mint := func(secret string, claims jwt.MapClaims) string {
		t.Helper()
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	at := func(d time.Duration) int64 { return now.Add(d).Unix() }
	for _, tc := range []struct {
		name    string
		token   string
		maxTTL  time.Duration
		wantErr error
		detail  string // a word the refusal's detail must contain
	}{
		{name: "good", token: mint(p.VoterSecret, jwt.MapClaims{"sub": "alice", "exp": at(time.Hour)})},
		{name: "exp exactly the lifetime ahead", token: mint(p.VoterSecret, jwt.MapClaims{"sub": "alice", "exp": at(24 * time.Hour)})},
		{name: "exp within the clock skew", token: mint(p.VoterSecret, jwt.MapClaims{"sub": "alice", "exp": at(24*time.Hour + 30*time.Second)})},
		{name: "no exp", token: mint(p.VoterSecret, jwt.MapClaims{"sub": "alice"}),
			wantErr: poll.ErrInvalidVoterToken, detail: "no expiry (exp)"},
		{name: "exp too far ahead", token: mint(p.VoterSecret, jwt.MapClaims{"sub": "alice", "exp": at(25 * time.Hour)}),
			wantErr: poll.ErrInvalidVoterToken, detail: "at most 24h ahead"},
		{name: "exp years ahead", token: mint(p.VoterSecret, jwt.MapClaims{"sub": "alice", "exp": at(10 * 365 * 24 * time.Hour)}),
			wantErr: poll.ErrInvalidVoterToken, detail: "too far ahead"},
		{name: "shorter lifetime configured", maxTTL: time.Hour, token: mint(p.VoterSecret, jwt.MapClaims{"sub": "alice", "exp": at(2 * time.Hour)}),
			wantErr: poll.ErrInvalidVoterToken, detail: "at most 1h ahead"},
		{name: "expired", token: mint(p.VoterSecret, jwt.MapClaims{"sub": "alice", "exp": at(-time.Minute)}),
			wantErr: poll.ErrInvalidVoterToken, detail: "expired"},
		{name: "wrong secret", token: mint("another-secret", jwt.MapClaims{"sub": "alice", "exp": at(time.Hour)}),
			wantErr: poll.ErrInvalidVoterToken, detail: "not valid"},
		{name: "no subject", token: mint(p.VoterSecret, jwt.MapClaims{"exp": at(time.Hour)}),
			wantErr: poll.ErrInvalidVoterToken, detail: "sub"},
		{name: "no token", wantErr: poll.ErrInvalidVoterToken, detail: "needs a voter token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			maxTTL := tc.maxTTL
			if maxTTL == 0 {
				maxTTL = DefaultMaxTokenTTL
			}
			sub, err := verifyVoterToken(p, tc.token, maxTTL, now)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("verifyVoterToken = %q, %v; want error %v", sub, err, tc.wantErr)
			}
			if err == nil {
				if sub != "alice" {
					t.Fatalf("subject %q, want alice", sub)
				}
				return
			}
			if !strings.Contains(err.Error(), tc.detail) {
				t.Fatalf("error %q does not say %q", err, tc.detail)
			}
		})
	}
}
