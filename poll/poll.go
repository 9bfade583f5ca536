package poll

import (
	"crypto/rand"
	"encoding/base64"
	"slices"
	"time"
)

// Kind says how many options one vote may choose.
type Kind string

const (
	KindSingle   Kind = "single"   // exactly one option a vote
	KindMultiple Kind = "multiple" // 1..MaxChoices distinct options
)

// Dedupe says who may vote once.
type Dedupe string

const (
	DedupeNone   Dedupe = "none"   // every vote counts
	DedupeDevice Dedupe = "device" // one vote per voter id sent by the client
	DedupeIP     Dedupe = "ip"     // one vote per client IP
	DedupeToken  Dedupe = "token"  // one vote per verified voter (HS256 JWT signed with the voter secret)
)

// Visibility says who sees results.
type Visibility string

const (
	VisibleAlways     Visibility = "always"
	VisibleAfterVote  Visibility = "after_vote"
	VisibleAfterClose Visibility = "after_close"
	VisibleOwner      Visibility = "owner"
)

// Status is derived from the schedule and the owner's hand: see Poll.StatusAt.
type Status string

const (
	StatusScheduled Status = "scheduled"
	StatusOpen      Status = "open"
	StatusClosed    Status = "closed"
)

// Option is one answer of a poll. Its ID is assigned by the server, short and
// stable: it never changes and is never reused within the poll.
type Option struct {
	ID    string `json:"id"`
	Label string `json:"label"`
}

// Poll is the stored definition of a poll, owner-only fields included. A
// *Poll handed out by the Catalog is a shared snapshot: never modify it, use
// Catalog.UpdatePoll.
type Poll struct {
	ID                string     `json:"id"`
	Question          string     `json:"question"`
	Kind              Kind       `json:"kind"`
	MaxChoices        int        `json:"max_choices"`
	Options           []Option   `json:"options"`
	Dedupe            Dedupe     `json:"dedupe"`
	ResultsVisibility Visibility `json:"results_visibility"`
	// ClosedByHand is set by POST /close and cleared by POST /open.
	ClosedByHand   bool       `json:"closed_by_hand,omitempty"`
	OpensAt        *time.Time `json:"opens_at"`
	ClosesAt       *time.Time `json:"closes_at"`
	AllowedOrigins []string   `json:"allowed_origins"`
	VoterSecret    string     `json:"voter_secret"`
	// Owner is the ID of the API key that created the poll.
	Owner string `json:"owner"`
	// OptionSeq counts the option IDs handed out, so removed IDs are never reused.
	OptionSeq int        `json:"option_seq"`
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt time.Time  `json:"updated_at"`
	DeletedAt *time.Time `json:"deleted_at,omitempty"`
}

// StatusAt returns the status of the poll at time now.
func (p *Poll) StatusAt(now time.Time) Status {
	switch {
	case p.ClosedByHand:
		return StatusClosed
	case p.OpensAt != nil && now.Before(*p.OpensAt):
		return StatusScheduled
	case p.ClosesAt != nil && !now.Before(*p.ClosesAt):
		return StatusClosed
	}
	return StatusOpen
}

// NextChange returns the next time after now at which StatusAt changes by
// itself, or the zero time if it never does.
func (p *Poll) NextChange(now time.Time) time.Time {
	if p.ClosedByHand {
		return time.Time{}
	}
	if p.OpensAt != nil && now.Before(*p.OpensAt) {
		return *p.OpensAt
	}
	if p.ClosesAt != nil && now.Before(*p.ClosesAt) {
		return *p.ClosesAt
	}
	return time.Time{}
}

// Option returns the option with the given ID.
func (p *Poll) Option(id string) (Option, bool) {
	for _, o := range p.Options {
		if o.ID == id {
			return o, true
		}
	}
	return Option{}, false
}

// OriginAllowed reports whether a browser request from origin may use the
// poll. An empty origin (not a browser, or a same-origin GET) is allowed, and
// so is any origin when the poll lists none.
func (p *Poll) OriginAllowed(origin string) bool {
	if origin == "" || len(p.AllowedOrigins) == 0 {
		return true
	}
	return slices.Contains(p.AllowedOrigins, normalizeOrigin(origin))
}

// Clone returns a deep copy, for callers that need to modify a poll.
func (p *Poll) Clone() *Poll {
	c := *p
	c.Options = slices.Clone(p.Options)
	c.AllowedOrigins = slices.Clone(p.AllowedOrigins)
	c.OpensAt = cloneTime(p.OpensAt)
	c.ClosesAt = cloneTime(p.ClosesAt)
	c.DeletedAt = cloneTime(p.DeletedAt)
	return &c
}

func cloneTime(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	c := *t
	return &c
}

// View is the public JSON shape of a poll (API.md). Owner-only fields are
// omitted when empty.
type View struct {
	ID                string     `json:"id"`
	Question          string     `json:"question"`
	Kind              Kind       `json:"kind"`
	MaxChoices        int        `json:"max_choices"`
	Options           []Option   `json:"options"`
	Dedupe            Dedupe     `json:"dedupe"`
	ResultsVisibility Visibility `json:"results_visibility"`
	Status            Status     `json:"status"`
	OpensAt           *time.Time `json:"opens_at"`
	ClosesAt          *time.Time `json:"closes_at"`
	AllowedOrigins    []string   `json:"allowed_origins,omitempty"`
	VoterSecret       string     `json:"voter_secret,omitempty"`
	CreatedAt         time.Time  `json:"created_at"`
	UpdatedAt         time.Time  `json:"updated_at"`
}

// ViewAt returns the poll as API.md shows it at time now; owner-only fields
// (allowed_origins, voter_secret) are included only when owner is true.
func (p *Poll) ViewAt(now time.Time, owner bool) View {
	v := View{
		ID: p.ID, Question: p.Question, Kind: p.Kind, MaxChoices: p.MaxChoices,
		Options: p.Options, Dedupe: p.Dedupe, ResultsVisibility: p.ResultsVisibility,
		Status: p.StatusAt(now), OpensAt: p.OpensAt, ClosesAt: p.ClosesAt,
		CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt,
	}
	if owner {
		v.AllowedOrigins = p.AllowedOrigins
		if v.AllowedOrigins == nil {
			v.AllowedOrigins = []string{}
		}
		v.VoterSecret = p.VoterSecret
	}
	return v
}

// NewID returns a random URL-safe identifier of n bytes of entropy (the
// encoded string is longer). Poll IDs use 9 bytes: 12 characters, unguessable.
// It starts with a letter or a digit, never '-' or '_', so that a command
// line never takes it for a flag (pollcast polls get ID).
func NewID(n int) string {
	for {
		id := base64.RawURLEncoding.EncodeToString(NewIDBytes(n))
		if id[0] != '-' && id[0] != '_' {
			return id
		}
	}
}

// NewIDBytes returns n random bytes.
func NewIDBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go ≥ 1.24)
	return b
}

// optionID returns the short ID of the n-th option ever created in a poll:
// a..z, then aa, ab, ...
func optionID(n int) string {
	var b []byte
	for {
		b = append(b, byte('a'+n%26))
		n = n/26 - 1
		if n < 0 {
			break
		}
	}
	slices.Reverse(b)
	return string(b)
}
