package web

import (
	"encoding/csv"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/pollcast/pollcast/analytics"
	"github.com/pollcast/pollcast/poll"
)

// ownedPoll returns the :id poll, deleted or not, if the key owns it.
func (s *server) ownedPoll(c *gin.Context) (*poll.Poll, bool) {
	p, ok := s.Catalog.PollOrDeleted(c.Param("id"))
	if !ok {
		s.fail(c, poll.Errorf(poll.ErrNotFound, "no poll %q", c.Param("id")))
		return nil, false
	}
	if !owns(keyOf(c), p) {
		s.fail(c, poll.Errorf(poll.ErrForbidden, "this key does not own poll %q", p.ID))
		return nil, false
	}
	return p, true
}

func parseTime(c *gin.Context, name string, def time.Time) (time.Time, error) {
	v := c.Query(name)
	if v == "" {
		return def, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, poll.Invalid(name, "must be an RFC 3339 time like 2026-11-22T10:00:00Z")
	}
	return t.UTC(), nil
}

type timeline struct {
	PollID string            `json:"poll_id"`
	Step   string            `json:"step"`
	From   time.Time         `json:"from"`
	To     time.Time         `json:"to"`
	Points []analytics.Point `json:"points"`
}

func (s *server) timeline(c *gin.Context) {
	p, ok := s.ownedPoll(c)
	if !ok {
		return
	}
	stepName := c.DefaultQuery("step", "1m")
	step, ok := analytics.Steps[stepName]
	if !ok {
		s.fail(c, poll.Invalid("step", "must be 1m, 5m, 1h or 1d"))
		return
	}
	now := time.Now().UTC()
	from, err := parseTime(c, "from", p.CreatedAt.Truncate(step))
	if err != nil {
		s.fail(c, err)
		return
	}
	to, err := parseTime(c, "to", now.Truncate(step).Add(step))
	if err != nil {
		s.fail(c, err)
		return
	}
	switch {
	case !to.After(from):
		s.fail(c, poll.Invalid("to", "must be after from"))
		return
	case to.Sub(from)/step > analytics.MaxPoints:
		s.fail(c, poll.Invalid("step", "%s steps from %s to %s make over %d points; choose a larger step or a shorter window",
			stepName, from.Format(time.RFC3339), to.Format(time.RFC3339), analytics.MaxPoints))
		return
	}
	points, err := s.Analytics.Timeline(c.Request.Context(), p.ID, from, to, step)
	if err != nil {
		s.fail(c, err)
		return
	}
	writeJSON(c, http.StatusOK, timeline{PollID: p.ID, Step: stepName, From: from, To: to,
		Points: analytics.FillTimeline(points, from, to, step)})
}

func (s *server) breakdown(c *gin.Context) {
	p, ok := s.ownedPoll(c)
	if !ok {
		return
	}
	by, err := analytics.ParseDimension(c.Query("by"))
	if err != nil {
		s.fail(c, err)
		return
	}
	rows, err := s.Analytics.Breakdown(c.Request.Context(), p.ID, by)
	if err != nil {
		s.fail(c, err)
		return
	}
	if rows == nil {
		rows = []analytics.Row{}
	}
	writeJSON(c, http.StatusOK, map[string]any{"poll_id": p.ID, "by": by, "rows": rows})
}

// votesCSV streams every stored vote of a poll as CSV, row by row.
func (s *server) votesCSV(c *gin.Context) {
	p, ok := s.ownedPoll(c)
	if !ok {
		return
	}
	h := c.Writer.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="poll-`+p.ID+`-votes.csv"`)
	h.Set("Cache-Control", "no-store")
	c.Status(http.StatusOK)
	w := csv.NewWriter(c.Writer)
	_ = w.Write([]string{"vote_id", "time", "options", "region", "country", "device", "referrer"})
	n := 0
	err := s.Analytics.Export(c.Request.Context(), p.ID, func(v *analytics.Vote) error {
		if err := w.Write([]string{v.VoteID, v.Time.Format(time.RFC3339), strings.Join(v.Options, " "),
			v.Region, v.Country, v.Device, csvSafe(v.Referrer)}); err != nil {
			return err
		}
		if n++; n%1000 == 0 {
			w.Flush()
			return w.Error()
		}
		return nil
	})
	w.Flush()
	if err != nil {
		// The status is sent: all we can do is cut the stream short.
		s.log.Error("csv export failed", "poll", p.ID, "err", err)
		panic(http.ErrAbortHandler)
	}
}

// csvSafe keeps a spreadsheet from reading a cell as a formula.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
