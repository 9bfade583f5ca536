package ingest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"net/netip"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pollcast/pollcast/poll"
)

const maxVoterLen = 200
const maxIdempotencyKeyLen = 200

// hasher computes the keyed hashes of identities and idempotency keys with
// the server secret, reusing HMAC states.
type hasher struct {
	pool sync.Pool // of *hmacState
}

// hmacState is a keyed hash with the scratch space of one sum, reused so
// that a sum allocates nothing: every vote takes one or two.
type hmacState struct {
	mac hash.Hash
	in  []byte
	out [sha256.Size]byte
}

func newHasher(secret []byte) *hasher {
	h := &hasher{}
	h.pool.New = func() any { return &hmacState{mac: hmac.New(sha256.New, secret), in: make([]byte, 0, 256)} }
	return h
}

// sum16 returns the first 16 bytes of HMAC(secret, kind, scope and id
// joined by 0 bytes).
func (h *hasher) sum16(kind, scope, id string) [16]byte {
	st := h.pool.Get().(*hmacState)
	in := append(st.in[:0], kind...)
	in = append(append(in, 0), scope...)
	in = append(append(in, 0), id...)
	st.mac.Reset()
	st.mac.Write(in)
	sum := st.mac.Sum(st.out[:0])
	var out [16]byte
	copy(out[:], sum)
	if cap(in) <= 4096 { // keep no giant buffer around
		st.in = in
	}
	h.pool.Put(st)
	return out
}

// voterKeyOf derives the voter of a vote under the poll's dedupe policy. ok
// is false for an anonymous vote (a "none" poll with neither voter id nor
// client address).
func (s *Service) voterKeyOf(p *poll.Poll, voter string, ip netip.Addr) (voterKey, bool, error) {
	switch p.Dedupe {
	case poll.DedupeDevice:
		if err := checkVoter(voter); err != nil {
			return voterKey{}, false, err
		}
		return s.hash.sum16("device", p.ID, voter), true, nil
	case poll.DedupeIP:
		if !ip.IsValid() {
			return voterKey{}, false, poll.Invalid("client", "no client address to deduplicate by")
		}
		return s.hash.sum16("ip", p.ID, clientPrefix(ip).String()), true, nil
	case poll.DedupeToken:
		sub, err := verifyVoterToken(p, voter, s.cfg.MaxTokenTTL, time.Now())
		if err != nil {
			return voterKey{}, false, err
		}
		return s.hash.sum16("token", p.ID, sub), true, nil
	default: // none: identify the voter for counting, never to refuse
		if voter != "" {
			if err := checkVoter(voter); err != nil {
				return voterKey{}, false, err
			}
			return s.hash.sum16("device", p.ID, voter), true, nil
		}
		if ip.IsValid() {
			return s.hash.sum16("ip", p.ID, clientPrefix(ip).String()), true, nil
		}
		return voterKey{}, false, nil
	}
}

func checkVoter(voter string) error {
	if voter == "" {
		return poll.Invalid("voter", "required: this poll allows one vote per device; send a stable device id")
	}
	if len(voter) > maxVoterLen || !utf8.ValidString(voter) {
		return poll.Invalid("voter", "must be at most %d bytes of UTF-8", maxVoterLen)
	}
	return nil
}

// DefaultMaxTokenTTL is how far ahead a voter token's exp may lie unless
// Config.MaxTokenTTL says otherwise.
const DefaultMaxTokenTTL = 24 * time.Hour

// tokenClockSkew is added to the longest allowed lifetime of a voter token:
// a site minting tokens of exactly that lifetime on a clock slightly ahead
// of ours must not see them refused.
const tokenClockSkew = time.Minute

// verifyVoterToken checks a voter token of a token poll: an HS256 JWT signed
// with the poll's voter secret, with a subject and an exp after now and at
// most maxTTL ahead of it. It returns the subject.
func verifyVoterToken(p *poll.Poll, token string, maxTTL time.Duration, now time.Time) (string, error) {
	if token == "" {
		return "", poll.Errorf(poll.ErrInvalidVoterToken, "this poll needs a voter token signed by the site that embeds it")
	}
	claims := jwt.RegisteredClaims{}
	_, err := jwt.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) {
		return []byte(p.VoterSecret), nil
	}, jwt.WithValidMethods([]string{"HS256"}), jwt.WithTimeFunc(func() time.Time { return now }))
	if err != nil {
		detail := "voter token is not valid for this poll"
		if errors.Is(err, jwt.ErrTokenExpired) {
			detail = "voter token has expired"
		}
		return "", poll.Errorf(poll.ErrInvalidVoterToken, "%s", detail)
	}
	if claims.ExpiresAt == nil {
		return "", poll.Errorf(poll.ErrInvalidVoterToken, "voter token has no expiry (exp); give it one at most %s ahead", ttlText(maxTTL))
	}
	if claims.ExpiresAt.Sub(now) > maxTTL+tokenClockSkew {
		return "", poll.Errorf(poll.ErrInvalidVoterToken, "voter token expires too far ahead: exp may be at most %s ahead", ttlText(maxTTL))
	}
	if claims.Subject == "" {
		return "", poll.Errorf(poll.ErrInvalidVoterToken, "voter token has no subject (sub)")
	}
	return claims.Subject, nil
}

// ttlText writes a lifetime as people write it: "24h" rather than "24h0m0s".
func ttlText(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	}
	return d.String()
}

// voteIDFor returns the vote ID of a vote: derived from the idempotency key
// when there is one, so a retry gets the same ID (and the same Nats-Msg-Id),
// random otherwise.
func (s *Service) voteIDFor(pollID, idempotencyKey string) (voteID, error) {
	if idempotencyKey == "" {
		var id voteID
		copy(id[:], poll.NewIDBytes(16))
		return id, nil
	}
	if len(idempotencyKey) > maxIdempotencyKeyLen {
		return voteID{}, poll.Invalid("idempotency_key", "must be at most %d bytes", maxIdempotencyKeyLen)
	}
	return s.hash.sum16("idem", pollID, idempotencyKey), nil
}

func (id voteID) String() string {
	return base64.RawURLEncoding.EncodeToString(id[:])
}

// parseVoteID reads the form String writes. It decodes straight into the
// ID (the rebuild at start parses every vote ID of the log).
func parseVoteID(s string) (voteID, error) {
	var id voteID
	if base64.RawURLEncoding.DecodedLen(len(s)) != len(id) {
		return voteID{}, fmt.Errorf("ingest: bad vote id %q", s)
	}
	if n, err := base64.RawURLEncoding.Decode(id[:], []byte(s)); err != nil || n != len(id) { // newlines are skipped
		return voteID{}, fmt.Errorf("ingest: bad vote id %q", s)
	}
	return id, nil
}
