package poll

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func opts(labels ...string) []OptionInput {
	out := make([]OptionInput, len(labels))
	for i, l := range labels {
		out[i] = OptionInput{Label: l}
	}
	return out
}

func TestNewValidation(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	later := now.Add(time.Hour)
	many := make([]string, 51)
	for i := range many {
		many[i] = "x"
	}
	tests := []struct {
		name    string
		in      CreateInput
		wantErr error
		field   string
	}{
		{"minimal", CreateInput{Question: "Q?", Options: opts("A", "B")}, nil, ""},
		{"empty question", CreateInput{Question: "", Options: opts("A", "B")}, ErrInvalid, "question"},
		{"blank question", CreateInput{Question: "   ", Options: opts("A", "B")}, ErrInvalid, "question"},
		{"long question", CreateInput{Question: strings.Repeat("q", 501), Options: opts("A", "B")}, ErrInvalid, "question"},
		{"500 runes ok", CreateInput{Question: strings.Repeat("ü", 500), Options: opts("A", "B")}, nil, ""},
		{"no options", CreateInput{Question: "Q"}, ErrInvalid, "options"},
		{"one option", CreateInput{Question: "Q", Options: opts("A")}, ErrInvalid, "options"},
		{"51 options", CreateInput{Question: "Q", Options: opts(many...)}, ErrInvalid, "options"},
		{"empty label", CreateInput{Question: "Q", Options: opts("A", "")}, ErrInvalid, "options[1].label"},
		{"long label", CreateInput{Question: "Q", Options: opts("A", strings.Repeat("l", 201))}, ErrInvalid, "options[1].label"},
		{"option id given", CreateInput{Question: "Q", Options: []OptionInput{{ID: "z", Label: "A"}, {Label: "B"}}}, ErrInvalid, "options[0].id"},
		{"bad kind", CreateInput{Question: "Q", Kind: "ranked", Options: opts("A", "B")}, ErrInvalid, "kind"},
		{"single max 2", CreateInput{Question: "Q", MaxChoices: 2, Options: opts("A", "B")}, ErrInvalid, "max_choices"},
		{"multiple max too big", CreateInput{Question: "Q", Kind: KindMultiple, MaxChoices: 3, Options: opts("A", "B")}, ErrInvalid, "max_choices"},
		{"multiple default max", CreateInput{Question: "Q", Kind: KindMultiple, Options: opts("A", "B", "C")}, nil, ""},
		{"bad dedupe", CreateInput{Question: "Q", Dedupe: "cookie", Options: opts("A", "B")}, ErrInvalid, "dedupe"},
		{"bad visibility", CreateInput{Question: "Q", ResultsVisibility: "never", Options: opts("A", "B")}, ErrInvalid, "results_visibility"},
		{"closes before opens", CreateInput{Question: "Q", OpensAt: &later, ClosesAt: &now, Options: opts("A", "B")}, ErrInvalid, "closes_at"},
		{"bad origin", CreateInput{Question: "Q", AllowedOrigins: []string{"news.example.com"}, Options: opts("A", "B")}, ErrInvalid, "allowed_origins[0]"},
		{"origin with path", CreateInput{Question: "Q", AllowedOrigins: []string{"https://a.example/x"}, Options: opts("A", "B")}, ErrInvalid, "allowed_origins[0]"},
		{"good origin", CreateInput{Question: "Q", AllowedOrigins: []string{"https://News.Example.com/"}, Options: opts("A", "B")}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := New(tt.in, "k1", now)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("New error = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if !strings.HasPrefix(err.(*Error).Detail, tt.field+":") {
					t.Fatalf("detail %q does not name field %q", err.(*Error).Detail, tt.field)
				}
				return
			}
			if len(p.ID) < 10 || p.VoterSecret == "" || p.Owner != "k1" {
				t.Fatalf("poll not filled in: %+v", p)
			}
			for i, o := range p.Options {
				if o.ID != optionID(i) {
					t.Fatalf("option %d id %q", i, o.ID)
				}
			}
		})
	}
}

func TestNewDefaultsAndOrigins(t *testing.T) {
	p, err := New(CreateInput{Question: "Q", Options: opts("A", "B"), AllowedOrigins: []string{"https://News.Example.com/"}}, "k", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if p.Kind != KindSingle || p.MaxChoices != 1 || p.Dedupe != DedupeDevice || p.ResultsVisibility != VisibleAlways {
		t.Fatalf("defaults: %+v", p)
	}
	if !p.OriginAllowed("https://news.example.com") || p.OriginAllowed("https://evil.example") || !p.OriginAllowed("") {
		t.Fatalf("origin check wrong for %v", p.AllowedOrigins)
	}
}

func TestOptionIDs(t *testing.T) {
	for n, want := range map[int]string{0: "a", 25: "z", 26: "aa", 27: "ab", 701: "zz", 702: "aaa"} {
		if got := optionID(n); got != want {
			t.Errorf("optionID(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestApplyPatch(t *testing.T) {
	now := time.Now()
	p, err := New(CreateInput{Question: "Q", Options: opts("A", "B", "C")}, "k", now)
	if err != nil {
		t.Fatal(err)
	}
	q := "New question"
	relabel := PatchInput{Question: &q, Options: []OptionInput{{ID: "a", Label: "A2"}, {ID: "b", Label: "B"}, {ID: "c", Label: "C"}, {Label: "D"}}}
	np, err := p.Apply(relabel, true, now)
	if err != nil {
		t.Fatalf("relabel and add with votes: %v", err)
	}
	if np.Question != q || np.Options[0].Label != "A2" || np.Options[3].ID != "d" || p.Question != "Q" {
		t.Fatalf("patched %+v (original %+v)", np, p)
	}
	remove := PatchInput{Options: []OptionInput{{ID: "a", Label: "A"}, {ID: "b", Label: "B"}}}
	if _, err := p.Apply(remove, true, now); !errors.Is(err, ErrHasVotes) {
		t.Fatalf("remove with votes = %v, want has_votes", err)
	}
	np, err = p.Apply(remove, false, now)
	if err != nil || len(np.Options) != 2 {
		t.Fatalf("remove without votes = %v, %v", np, err)
	}
	// A removed option's ID is never reused.
	np, err = np.Apply(PatchInput{Options: []OptionInput{{ID: "a", Label: "A"}, {ID: "b", Label: "B"}, {Label: "New"}}}, false, now)
	if err != nil || np.Options[2].ID != "d" {
		t.Fatalf("re-add: %+v %v", np, err)
	}
	if _, err := p.Apply(PatchInput{Options: []OptionInput{{ID: "zz", Label: "A"}, {ID: "b", Label: "B"}}}, false, now); !errors.Is(err, ErrInvalid) {
		t.Fatalf("unknown option id = %v", err)
	}
	if _, err := p.Apply(PatchInput{Options: []OptionInput{{ID: "a", Label: "A"}, {ID: "a", Label: "B"}}}, false, now); !errors.Is(err, ErrInvalid) {
		t.Fatalf("duplicate option id = %v", err)
	}
	past := now.Add(-time.Minute)
	np, err = p.Apply(PatchInput{ClosesAt: Nullable[time.Time]{Set: true, Value: &past}}, false, now)
	if err != nil || np.StatusAt(now) != StatusClosed {
		t.Fatalf("close by schedule: %v %v", np, err)
	}
	np, err = np.Apply(PatchInput{ClosesAt: Nullable[time.Time]{Set: true}}, false, now)
	if err != nil || np.ClosesAt != nil || np.StatusAt(now) != StatusOpen {
		t.Fatalf("clear closes_at: %v %v", np, err)
	}
}

func TestStatusAndVisibility(t *testing.T) {
	now := time.Now()
	before, after := now.Add(-time.Hour), now.Add(time.Hour)
	tests := []struct {
		name string
		p    Poll
		want Status
		next time.Time
	}{
		{"open", Poll{}, StatusOpen, time.Time{}},
		{"scheduled", Poll{OpensAt: &after}, StatusScheduled, after},
		{"closing later", Poll{ClosesAt: &after}, StatusOpen, after},
		{"closed by time", Poll{ClosesAt: &before}, StatusClosed, time.Time{}},
		{"closed by hand", Poll{ClosedByHand: true, OpensAt: &after}, StatusClosed, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.StatusAt(now); got != tt.want {
				t.Fatalf("StatusAt = %s, want %s", got, tt.want)
			}
			if got := tt.p.NextChange(now); !got.Equal(tt.next) {
				t.Fatalf("NextChange = %v, want %v", got, tt.next)
			}
		})
	}
	vis := []struct {
		v      Visibility
		closed bool
		viewer Viewer
		want   bool
	}{
		{VisibleAlways, false, Viewer{}, true},
		{VisibleAfterVote, false, Viewer{}, false},
		{VisibleAfterVote, false, Viewer{Voted: true}, true},
		{VisibleAfterClose, false, Viewer{Voted: true}, false},
		{VisibleAfterClose, true, Viewer{}, true},
		{VisibleOwner, true, Viewer{Voted: true}, false},
		{VisibleOwner, false, Viewer{Owner: true}, true},
	}
	for _, tt := range vis {
		p := Poll{ResultsVisibility: tt.v, ClosedByHand: tt.closed}
		if got := p.ResultsVisibleAt(tt.viewer, now); got != tt.want {
			t.Errorf("%s closed=%v viewer=%+v: visible=%v, want %v", tt.v, tt.closed, tt.viewer, got, tt.want)
		}
	}
}

func TestResultsAt(t *testing.T) {
	p, _ := New(CreateInput{Question: "Q", Options: opts("A", "B")}, "k", time.Now())
	r := p.ResultsAt(Counts{Total: 3, Voters: 3, Options: map[string]int64{"b": 3, "gone": 9}, Version: 3}, time.Now())
	if len(r.Options) != 2 || r.Options[0] != (OptionCount{"a", 0}) || r.Options[1] != (OptionCount{"b", 3}) || r.Status != StatusOpen {
		t.Fatalf("results %+v", r)
	}
}

// TestNewIDNeverLooksLikeAFlag: one ID in 32 would start with '-' or '_'
// if drawn plainly; none may.
func TestNewIDNeverLooksLikeAFlag(t *testing.T) {
	for range 10_000 {
		if id := NewID(9); id[0] == '-' || id[0] == '_' || len(id) != 12 {
			t.Fatalf("NewID(9) = %q", id)
		}
	}
}
