package sdk

import (
	"encoding/json"
	"time"
)

// Kind says how many options one vote may choose.
type Kind string

const (
	KindSingle   Kind = "single"   // exactly one option a vote (the default)
	KindMultiple Kind = "multiple" // 1..MaxChoices distinct options
)

// Dedupe says who may vote once.
type Dedupe string

const (
	DedupeNone   Dedupe = "none"   // every vote counts
	DedupeDevice Dedupe = "device" // one vote per Vote.Voter id (the default)
	DedupeIP     Dedupe = "ip"     // one vote per client IP
	DedupeToken  Dedupe = "token"  // one vote per verified voter: Vote.Voter is an HS256 JWT signed with Poll.VoterSecret
)

// Visibility says who sees a poll's results.
type Visibility string

const (
	VisibleAlways     Visibility = "always" // the default
	VisibleAfterVote  Visibility = "after_vote"
	VisibleAfterClose Visibility = "after_close"
	VisibleOwner      Visibility = "owner"
)

// Status is a poll's state, derived by the server from its schedule and its
// owner's hand.
type Status string

const (
	StatusScheduled Status = "scheduled" // before OpensAt
	StatusOpen      Status = "open"
	StatusClosed    Status = "closed" // after ClosesAt, or closed by hand
)

// Role is what an API key may do.
type Role string

const (
	RoleOwner Role = "owner" // manages its own polls
	RoleAdmin Role = "admin" // manages every poll and the API keys
)

// Option is one answer of a poll. The server assigns its ID ("a", "b", ...);
// it never changes.
type Option struct {
	ID    string `json:"id"`
	Label string `json:"label"`
}

// Poll is a poll as the server shows it. AllowedOrigins and VoterSecret are
// owner-only: they are empty unless the client's key owns the poll.
type Poll struct {
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

// Label returns the label of the option with the given ID, or "" if the
// poll has none.
func (p *Poll) Label(optionID string) string {
	for _, o := range p.Options {
		if o.ID == optionID {
			return o.Label
		}
	}
	return ""
}

// CreatePollParams is a new poll. Question and at least two Options are
// required; every other field has the server's default when zero.
type CreatePollParams struct {
	// Question is 1–500 characters.
	Question string
	// Options are the labels of the answers (2–50, each 1–200 characters),
	// in order. The server assigns their IDs: "a", "b", ...
	Options []string
	// Kind zero value means KindSingle.
	Kind Kind
	// MaxChoices bounds a KindMultiple vote. Zero value means 1 for
	// KindSingle and the number of options for KindMultiple.
	MaxChoices int
	// Dedupe zero value means DedupeDevice.
	Dedupe Dedupe
	// ResultsVisibility zero value means VisibleAlways.
	ResultsVisibility Visibility
	// OpensAt, when set, schedules the opening. Nil means open now.
	OpensAt *time.Time
	// ClosesAt, when set, schedules the closing. Nil means open until closed
	// by hand.
	ClosesAt *time.Time
	// AllowedOrigins are the web origins whose pages may use the poll
	// ("https://news.example.com"). Empty means any origin.
	AllowedOrigins []string
}

type labelInput struct {
	ID    string `json:"id,omitempty"`
	Label string `json:"label"`
}

// MarshalJSON encodes the body of POST /v1/polls.
func (p CreatePollParams) MarshalJSON() ([]byte, error) {
	opts := make([]labelInput, len(p.Options))
	for i, l := range p.Options {
		opts[i] = labelInput{Label: l}
	}
	return json.Marshal(struct {
		Question          string       `json:"question"`
		Kind              Kind         `json:"kind,omitempty"`
		MaxChoices        int          `json:"max_choices,omitempty"`
		Options           []labelInput `json:"options"`
		Dedupe            Dedupe       `json:"dedupe,omitempty"`
		ResultsVisibility Visibility   `json:"results_visibility,omitempty"`
		OpensAt           *time.Time   `json:"opens_at,omitempty"`
		ClosesAt          *time.Time   `json:"closes_at,omitempty"`
		AllowedOrigins    []string     `json:"allowed_origins,omitempty"`
	}{p.Question, p.Kind, p.MaxChoices, opts, p.Dedupe, p.ResultsVisibility, p.OpensAt, p.ClosesAt, p.AllowedOrigins})
}

// UpdatePollParams changes a poll (PATCH): nil and false fields are left as
// they are.
type UpdatePollParams struct {
	Question *string
	// Options, when not nil, is the complete new list of options: an entry
	// with the ID of an existing option keeps (and may relabel) it, an entry
	// without ID adds an option, and an existing option left out is removed
	// (refused with CodeHasVotes once the poll has votes).
	Options           []Option
	MaxChoices        *int
	ResultsVisibility *Visibility
	// OpensAt sets the opening time; ClearOpensAt removes it.
	OpensAt      *time.Time
	ClearOpensAt bool
	// ClosesAt sets the closing time; ClearClosesAt removes it.
	ClosesAt      *time.Time
	ClearClosesAt bool
	// AllowedOrigins, when not nil, replaces the allowed origins; point it
	// at an empty slice to allow any origin.
	AllowedOrigins *[]string
}

// MarshalJSON encodes the body of PATCH /v1/polls/{id}: only the fields to
// change, null for a cleared time.
func (p UpdatePollParams) MarshalJSON() ([]byte, error) {
	m := map[string]any{}
	if p.Question != nil {
		m["question"] = *p.Question
	}
	if p.Options != nil {
		opts := make([]labelInput, len(p.Options))
		for i, o := range p.Options {
			opts[i] = labelInput(o)
		}
		m["options"] = opts
	}
	if p.MaxChoices != nil {
		m["max_choices"] = *p.MaxChoices
	}
	if p.ResultsVisibility != nil {
		m["results_visibility"] = *p.ResultsVisibility
	}
	switch {
	case p.ClearOpensAt:
		m["opens_at"] = nil
	case p.OpensAt != nil:
		m["opens_at"] = p.OpensAt.UTC()
	}
	switch {
	case p.ClearClosesAt:
		m["closes_at"] = nil
	case p.ClosesAt != nil:
		m["closes_at"] = p.ClosesAt.UTC()
	}
	if p.AllowedOrigins != nil {
		origins := *p.AllowedOrigins
		if origins == nil {
			origins = []string{}
		}
		m["allowed_origins"] = origins
	}
	return json.Marshal(m)
}

// ListPollsParams selects a page of polls.
type ListPollsParams struct {
	// Limit is the page size, 1–200. Zero value means the server's default, 50.
	Limit int
	// Cursor is PollPage.NextCursor of the previous page. Empty means the
	// first page.
	Cursor string
	// Status keeps only polls in that status. Empty means all.
	Status Status
}

// PollPage is one page of polls, newest first.
type PollPage struct {
	Polls []Poll `json:"polls"`
	// NextCursor fetches the next page; empty on the last page.
	NextCursor string `json:"next_cursor"`
}

// OptionCount is one option's share of the results.
type OptionCount struct {
	ID    string `json:"id"`
	Votes int64  `json:"votes"`
}

// Results are a poll's counts.
type Results struct {
	PollID string `json:"poll_id"`
	// Total counts votes (a multiple-choice vote counts once here and once
	// for each option chosen).
	Total int64 `json:"total"`
	// Voters counts distinct voters.
	Voters int64 `json:"voters"`
	// Options are every current option, in poll order, zeros included.
	Options []OptionCount `json:"options"`
	// Version increases with every change of the counts.
	Version   int64     `json:"version"`
	Status    Status    `json:"status"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Votes returns the votes of the option with the given ID.
func (r *Results) Votes(optionID string) int64 {
	for _, o := range r.Options {
		if o.ID == optionID {
			return o.Votes
		}
	}
	return 0
}

// APIKey is an API key as the server shows it. Key, the secret, is set only
// in the answer of CreateKey: the server stores only its hash.
type APIKey struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Role      Role      `json:"role"`
	CreatedAt time.Time `json:"created_at"`
	Key       string    `json:"key,omitempty"`
}

// Step is the width of a timeline bucket.
type Step string

const (
	StepMinute   Step = "1m"
	Step5Minutes Step = "5m"
	StepHour     Step = "1h"
	StepDay      Step = "1d"
)

// TimelineParams selects a timeline. Zero values mean the server's defaults.
type TimelineParams struct {
	// From is the start of the first bucket. Zero value means the poll's
	// creation.
	From time.Time
	// To is the end of the last bucket. Zero value means now.
	To time.Time
	// Step zero value means StepMinute.
	Step Step
}

// Point is one timeline bucket: the votes stored between T and T+step.
type Point struct {
	T        time.Time        `json:"t"`
	Votes    int64            `json:"votes"`
	ByOption map[string]int64 `json:"by_option"`
}

// Timeline is a poll's votes over time, one point per step, empty steps
// included.
type Timeline struct {
	PollID string    `json:"poll_id"`
	Step   Step      `json:"step"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	Points []Point   `json:"points"`
}

// Dimension is what a breakdown groups votes by.
type Dimension string

const (
	ByCountry  Dimension = "country"  // from the client IP (ISO 3166 alpha-2)
	ByRegion   Dimension = "region"   // the deployment region of the ingest node
	ByDevice   Dimension = "device"   // desktop, mobile, tablet, bot or other
	ByReferrer Dimension = "referrer" // the host of the page the poll is embedded on
)

// Row is one line of a breakdown.
type Row struct {
	Key      string           `json:"key"`
	Votes    int64            `json:"votes"`
	ByOption map[string]int64 `json:"by_option"`
}

// Breakdown is a poll's votes grouped by a dimension, largest first.
type Breakdown struct {
	PollID string    `json:"poll_id"`
	By     Dimension `json:"by"`
	Rows   []Row     `json:"rows"`
}
