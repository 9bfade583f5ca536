package poll

import (
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits of API.md.
const (
	MaxQuestionLen    = 500
	MaxLabelLen       = 200
	MinOptions        = 2
	MaxOptions        = 50
	MaxAllowedOrigins = 50
)

// OptionInput is an option as an owner writes it. ID is empty for a new
// option; on PATCH it names an existing option to keep (and relabel).
type OptionInput struct {
	ID    string `json:"id,omitempty"`
	Label string `json:"label"`
}

// CreateInput is the body of POST /v1/polls.
type CreateInput struct {
	Question          string        `json:"question"`
	Kind              Kind          `json:"kind"`
	MaxChoices        int           `json:"max_choices"`
	Options           []OptionInput `json:"options"`
	Dedupe            Dedupe        `json:"dedupe"`
	ResultsVisibility Visibility    `json:"results_visibility"`
	OpensAt           *time.Time    `json:"opens_at"`
	ClosesAt          *time.Time    `json:"closes_at"`
	AllowedOrigins    []string      `json:"allowed_origins"`
}

// Nullable is a JSON field that distinguishes "absent" (Set false) from
// "null" (Set true, Value nil).
type Nullable[T any] struct {
	Set   bool
	Value *T
}

// UnmarshalJSON implements json.Unmarshaler.
func (n *Nullable[T]) UnmarshalJSON(b []byte) error {
	n.Set = true
	if string(b) == "null" {
		n.Value = nil
		return nil
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	n.Value = &v
	return nil
}

// PatchInput is the body of PATCH /v1/polls/{id}. Absent fields are left as
// they are; opens_at and closes_at may be set to null to clear them.
type PatchInput struct {
	Question          *string             `json:"question"`
	Options           []OptionInput       `json:"options"`
	MaxChoices        *int                `json:"max_choices"`
	ResultsVisibility *Visibility         `json:"results_visibility"`
	OpensAt           Nullable[time.Time] `json:"opens_at"`
	ClosesAt          Nullable[time.Time] `json:"closes_at"`
	AllowedOrigins    Nullable[[]string]  `json:"allowed_origins"`
}

// New validates in and returns a new poll owned by owner, created at now.
func New(in CreateInput, owner string, now time.Time) (*Poll, error) {
	p := &Poll{
		ID:                NewID(9),
		Question:          in.Question,
		Kind:              in.Kind,
		MaxChoices:        in.MaxChoices,
		Dedupe:            in.Dedupe,
		ResultsVisibility: in.ResultsVisibility,
		OpensAt:           utcPtr(in.OpensAt),
		ClosesAt:          utcPtr(in.ClosesAt),
		VoterSecret:       NewID(32),
		Owner:             owner,
		CreatedAt:         now.UTC(),
		UpdatedAt:         now.UTC(),
	}
	if p.Kind == "" {
		p.Kind = KindSingle
	}
	if p.Dedupe == "" {
		p.Dedupe = DedupeDevice
	}
	if p.ResultsVisibility == "" {
		p.ResultsVisibility = VisibleAlways
	}
	if in.Options == nil {
		return nil, Invalid("options", "required: 2 to 50 options")
	}
	for i, o := range in.Options {
		if o.ID != "" {
			return nil, Invalid("options["+strconv.Itoa(i)+"].id", "assigned by the server; send only the label")
		}
		p.Options = append(p.Options, Option{ID: optionID(p.OptionSeq), Label: o.Label})
		p.OptionSeq++
	}
	origins, err := normalizeOrigins(in.AllowedOrigins)
	if err != nil {
		return nil, err
	}
	p.AllowedOrigins = origins
	if p.Kind == KindMultiple && p.MaxChoices == 0 {
		p.MaxChoices = len(p.Options)
	}
	if p.Kind == KindSingle && p.MaxChoices == 0 {
		p.MaxChoices = 1
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}

// Apply validates in against p and returns the patched copy. hasVotes says
// whether votes were counted for the poll: options cannot be removed then.
func (p *Poll) Apply(in PatchInput, hasVotes bool, now time.Time) (*Poll, error) {
	c := p.Clone()
	if in.Question != nil {
		c.Question = *in.Question
	}
	if in.ResultsVisibility != nil {
		c.ResultsVisibility = *in.ResultsVisibility
	}
	if in.MaxChoices != nil {
		c.MaxChoices = *in.MaxChoices
	}
	if in.OpensAt.Set {
		c.OpensAt = utcPtr(in.OpensAt.Value)
	}
	if in.ClosesAt.Set {
		c.ClosesAt = utcPtr(in.ClosesAt.Value)
	}
	if in.AllowedOrigins.Set {
		var list []string
		if in.AllowedOrigins.Value != nil {
			list = *in.AllowedOrigins.Value
		}
		origins, err := normalizeOrigins(list)
		if err != nil {
			return nil, err
		}
		c.AllowedOrigins = origins
	}
	if in.Options != nil {
		kept := make(map[string]bool, len(in.Options))
		c.Options = c.Options[:0:0]
		for i, o := range in.Options {
			if o.ID == "" {
				c.Options = append(c.Options, Option{ID: optionID(c.OptionSeq), Label: o.Label})
				c.OptionSeq++
				continue
			}
			if _, ok := p.Option(o.ID); !ok {
				return nil, Invalid("options["+strconv.Itoa(i)+"].id", "no option %q in this poll", o.ID)
			}
			if kept[o.ID] {
				return nil, Invalid("options["+strconv.Itoa(i)+"].id", "option %q listed twice", o.ID)
			}
			kept[o.ID] = true
			c.Options = append(c.Options, Option{ID: o.ID, Label: o.Label})
		}
		if hasVotes && len(kept) < len(p.Options) {
			return nil, Errorf(ErrHasVotes, "options cannot be removed once votes exist; relabel them instead")
		}
	}
	c.UpdatedAt = now.UTC()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// Validate checks the rules of API.md on a whole poll.
func (p *Poll) Validate() error {
	if n := utf8.RuneCountInString(p.Question); n < 1 || n > MaxQuestionLen || strings.TrimSpace(p.Question) == "" {
		return Invalid("question", "must be 1 to %d characters", MaxQuestionLen)
	}
	if !utf8.ValidString(p.Question) {
		return Invalid("question", "must be valid UTF-8")
	}
	switch p.Kind {
	case KindSingle, KindMultiple:
	default:
		return Invalid("kind", "must be single or multiple")
	}
	if n := len(p.Options); n < MinOptions || n > MaxOptions {
		return Invalid("options", "must have %d to %d options, got %d", MinOptions, MaxOptions, n)
	}
	for i, o := range p.Options {
		if n := utf8.RuneCountInString(o.Label); n < 1 || n > MaxLabelLen || strings.TrimSpace(o.Label) == "" || !utf8.ValidString(o.Label) {
			return Invalid("options["+strconv.Itoa(i)+"].label", "must be 1 to %d characters", MaxLabelLen)
		}
	}
	switch {
	case p.Kind == KindSingle && p.MaxChoices != 1:
		return Invalid("max_choices", "must be 1 for a single-choice poll")
	case p.Kind == KindMultiple && (p.MaxChoices < 1 || p.MaxChoices > len(p.Options)):
		return Invalid("max_choices", "must be between 1 and the number of options (%d)", len(p.Options))
	}
	switch p.Dedupe {
	case DedupeNone, DedupeDevice, DedupeIP, DedupeToken:
	default:
		return Invalid("dedupe", "must be none, device, ip or token")
	}
	switch p.ResultsVisibility {
	case VisibleAlways, VisibleAfterVote, VisibleAfterClose, VisibleOwner:
	default:
		return Invalid("results_visibility", "must be always, after_vote, after_close or owner")
	}
	if p.OpensAt != nil && p.ClosesAt != nil && !p.ClosesAt.After(*p.OpensAt) {
		return Invalid("closes_at", "must be after opens_at")
	}
	return nil
}

func normalizeOrigins(in []string) ([]string, error) {
	if len(in) > MaxAllowedOrigins {
		return nil, Invalid("allowed_origins", "at most %d origins", MaxAllowedOrigins)
	}
	out := make([]string, 0, len(in))
	for i, s := range in {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return nil, Invalid("allowed_origins["+strconv.Itoa(i)+"]", "must be an origin like https://news.example.com")
		}
		out = append(out, normalizeOrigin(s))
	}
	return out, nil
}

// normalizeOrigin lower-cases an origin and drops a trailing slash, so that
// "https://News.Example.com/" matches the browser's "https://news.example.com".
func normalizeOrigin(s string) string {
	return strings.TrimSuffix(strings.ToLower(s), "/")
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
