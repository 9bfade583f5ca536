package web

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/pollcast/pollcast/poll"
)

const (
	defaultListLimit = 50
	maxListLimit     = 200
)

func (s *server) createPoll(c *gin.Context) {
	var in poll.CreateInput
	if err := decodeJSON(c, maxBody, &in); err != nil {
		s.fail(c, err)
		return
	}
	p, err := poll.New(in, keyOf(c).ID, time.Now())
	if err != nil {
		s.fail(c, err)
		return
	}
	if err := s.Catalog.CreatePoll(c.Request.Context(), p); err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Location", "/v1/polls/"+p.ID)
	writeJSON(c, http.StatusCreated, p.ViewAt(time.Now(), true))
}

type pollList struct {
	Polls      []poll.View `json:"polls"`
	NextCursor *string     `json:"next_cursor"`
}

func (s *server) listPolls(c *gin.Context) {
	k := keyOf(c)
	f := poll.ListFilter{Limit: defaultListLimit}
	if k.Role != poll.RoleAdmin {
		f.Owner = k.ID
	}
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxListLimit {
			s.fail(c, poll.Invalid("limit", "must be 1 to %d", maxListLimit))
			return
		}
		f.Limit = n
	}
	if v := c.Query("status"); v != "" {
		switch st := poll.Status(v); st {
		case poll.StatusScheduled, poll.StatusOpen, poll.StatusClosed:
			f.Status = st
		default:
			s.fail(c, poll.Invalid("status", "must be scheduled, open or closed"))
			return
		}
	}
	if v := c.Query("cursor"); v != "" {
		id, err := base64.RawURLEncoding.DecodeString(v)
		if err != nil || len(id) == 0 {
			s.fail(c, poll.Invalid("cursor", "not a cursor from a previous page"))
			return
		}
		f.After = string(id)
	}
	now := time.Now()
	polls, more := s.Catalog.List(f, now)
	out := pollList{Polls: make([]poll.View, len(polls))}
	for i, p := range polls {
		out.Polls[i] = p.ViewAt(now, true)
	}
	if more {
		cur := base64.RawURLEncoding.EncodeToString([]byte(polls[len(polls)-1].ID))
		out.NextCursor = &cur
	}
	writeJSON(c, http.StatusOK, out)
}

// pollOf returns the poll of the :id parameter, or answers 404.
func (s *server) pollOf(c *gin.Context) (*poll.Poll, bool) {
	p, ok := s.Catalog.Fetch(c.Request.Context(), c.Param("id"))
	if !ok {
		s.fail(c, poll.Errorf(poll.ErrNotFound, "no poll %q", c.Param("id")))
	}
	return p, ok
}

func (s *server) getPoll(c *gin.Context) {
	p, ok := s.pollOf(c)
	if !ok {
		return
	}
	c.Header("Cache-Control", "no-cache")
	writeJSON(c, http.StatusOK, p.ViewAt(time.Now(), owns(keyOf(c), p)))
}

// update changes the :id poll with fn after checking the key owns it.
func (s *server) update(c *gin.Context, fn func(p *poll.Poll, now time.Time) (*poll.Poll, error)) {
	k := keyOf(c)
	ctx := c.Request.Context()
	now := time.Now()
	p, err := s.Catalog.UpdatePoll(ctx, c.Param("id"), func(p *poll.Poll) (*poll.Poll, error) {
		if !owns(k, p) {
			return nil, poll.Errorf(poll.ErrForbidden, "this key does not own poll %q", p.ID)
		}
		return fn(p, now)
	})
	if err != nil {
		s.fail(c, err)
		return
	}
	if p.DeletedAt != nil {
		if err := s.Store.DeletePoll(ctx, p.ID); err != nil {
			s.fail(c, err)
			return
		}
		c.Status(http.StatusNoContent)
		return
	}
	writeJSON(c, http.StatusOK, p.ViewAt(now, true))
}

func (s *server) patchPoll(c *gin.Context) {
	var in poll.PatchInput
	if err := decodeJSON(c, maxBody, &in); err != nil {
		s.fail(c, err)
		return
	}
	s.update(c, func(p *poll.Poll, now time.Time) (*poll.Poll, error) {
		hasVotes := false
		if in.Options != nil {
			counts, err := s.Store.Counts(c.Request.Context(), p.ID)
			if err != nil {
				return nil, err
			}
			hasVotes = counts.Total > 0
		}
		return p.Apply(in, hasVotes, now)
	})
}

func (s *server) closePoll(c *gin.Context) {
	s.update(c, func(p *poll.Poll, now time.Time) (*poll.Poll, error) {
		p.ClosedByHand = true
		p.UpdatedAt = now
		return p, nil
	})
}

// openPoll opens a poll now: it clears a hand close, a future opening time
// and a past closing time.
func (s *server) openPoll(c *gin.Context) {
	s.update(c, func(p *poll.Poll, now time.Time) (*poll.Poll, error) {
		p.ClosedByHand = false
		if p.OpensAt != nil && now.Before(*p.OpensAt) {
			p.OpensAt = nil
		}
		if p.ClosesAt != nil && !now.Before(*p.ClosesAt) {
			p.ClosesAt = nil
		}
		p.UpdatedAt = now
		return p, nil
	})
}

func (s *server) deletePoll(c *gin.Context) {
	switch c.Query("purge") {
	case "", "false":
	case "true":
		s.purgePoll(c)
		return
	default:
		s.fail(c, poll.Invalid("purge", "must be true or false"))
		return
	}
	s.update(c, func(p *poll.Poll, now time.Time) (*poll.Poll, error) {
		p.DeletedAt = &now
		p.UpdatedAt = now
		return p, nil
	})
}
