package poll

import "time"

// Counts is what the tally knows about one poll: the fold of its votes in
// the log. Options maps option ID to votes; options without votes are absent.
// The zero value means "no votes yet".
type Counts struct {
	PollID string `json:"poll_id"`
	// Total counts votes (ballots); a multiple-choice vote adds one to Total
	// and one to each chosen option.
	Total int64 `json:"total"`
	// Voters counts distinct voters.
	Voters  int64            `json:"voters"`
	Options map[string]int64 `json:"options"`
	// Version increases with every change of the counts.
	Version   int64     `json:"version"`
	UpdatedAt time.Time `json:"updated_at"`
}

// OptionCount is one row of Results.
type OptionCount struct {
	ID    string `json:"id"`
	Votes int64  `json:"votes"`
}

// Results is the JSON shape of API.md's results object.
type Results struct {
	PollID    string        `json:"poll_id"`
	Total     int64         `json:"total"`
	Voters    int64         `json:"voters"`
	Options   []OptionCount `json:"options"`
	Version   int64         `json:"version"`
	Status    Status        `json:"status"`
	UpdatedAt time.Time     `json:"updated_at"`
}

// ResultsAt combines the poll and its counts into API.md's results object at
// time now: every current option in poll order, zero counts included.
func (p *Poll) ResultsAt(c Counts, now time.Time) Results {
	r := Results{
		PollID: p.ID, Total: c.Total, Voters: c.Voters, Version: c.Version,
		Status: p.StatusAt(now), UpdatedAt: c.UpdatedAt,
		Options: make([]OptionCount, len(p.Options)),
	}
	if r.UpdatedAt.IsZero() {
		r.UpdatedAt = p.CreatedAt
	}
	for i, o := range p.Options {
		r.Options[i] = OptionCount{ID: o.ID, Votes: c.Options[o.ID]}
	}
	return r
}

// Viewer describes who asks to see results.
type Viewer struct {
	// Owner is true for a request authenticated as the poll's owner or an admin.
	Owner bool
	// Voted is true when the asking voter is known to have voted on the poll.
	Voted bool
}

// ResultsVisibleAt reports whether v may see the poll's results at time now.
func (p *Poll) ResultsVisibleAt(v Viewer, now time.Time) bool {
	if v.Owner {
		return true
	}
	switch p.ResultsVisibility {
	case VisibleAlways:
		return true
	case VisibleAfterVote:
		return v.Voted || p.StatusAt(now) == StatusClosed
	case VisibleAfterClose:
		return p.StatusAt(now) == StatusClosed
	}
	return false
}
