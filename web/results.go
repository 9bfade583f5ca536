package web

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/pollcast/pollcast/poll"
	"github.com/pollcast/pollcast/realtime"
)

// viewerOf describes who asks for the results of p: the owner, or a voter
// who may have voted (identified by ?voter= or the client address).
func (s *server) viewerOf(c *gin.Context, p *poll.Poll) poll.Viewer {
	v := poll.Viewer{Owner: owns(keyOf(c), p)}
	if !v.Owner && p.ResultsVisibility == poll.VisibleAfterVote {
		v.Voted = s.Ingest.HasVoted(c.Request.Context(), p, c.Query("voter"), s.clientIP(c.Request))
	}
	return v
}

func (s *server) results(c *gin.Context) {
	p, ok := s.pollOf(c)
	if !ok {
		return
	}
	now := time.Now()
	if !p.ResultsVisibleAt(s.viewerOf(c, p), now) {
		s.fail(c, poll.Errorf(poll.ErrResultsHidden, "results of this poll are shown %s", visibilityText(p.ResultsVisibility)))
		return
	}
	counts, err := s.Store.Counts(c.Request.Context(), p.ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-cache")
	writeJSON(c, http.StatusOK, p.ResultsAt(counts, now))
}

func visibilityText(v poll.Visibility) string {
	switch v {
	case poll.VisibleAfterVote:
		return "after you vote"
	case poll.VisibleAfterClose:
		return "when the poll closes"
	case poll.VisibleOwner:
		return "to its owner only"
	}
	return "to everyone"
}

// liveViewer checks the origin and returns the viewer of a live connection.
func (s *server) liveViewer(c *gin.Context) (*poll.Poll, realtime.Viewer, bool) {
	p, ok := s.pollOf(c)
	if !ok {
		return nil, realtime.Viewer{}, false
	}
	if !s.checkOrigin(c, p) {
		return nil, realtime.Viewer{}, false
	}
	pv := s.viewerOf(c, p)
	one, many := s.socketVoters(c.Request, p.ID, c.Query("voter"))
	return p, realtime.Viewer{Owner: pv.Owner, Voted: pv.Voted, Vote: one, VoteBatch: many}, true
}

func (s *server) live(c *gin.Context) {
	p, v, ok := s.liveViewer(c)
	if !ok || !s.admitLive(c, &v) {
		return
	}
	clearBodyDeadline(c)
	s.Hub.ServeWebSocket(c.Writer, c.Request, p.ID, v)
}

func (s *server) events(c *gin.Context) {
	p, v, ok := s.liveViewer(c)
	if !ok || !s.admitLive(c, &v) {
		return
	}
	v.Vote, v.VoteBatch = nil, nil // SSE is one-way
	clearBodyDeadline(c)
	s.Hub.ServeSSE(c.Writer, c.Request, p.ID, v)
}

// admitLive takes one of the live connections the client's address may
// hold (realtime.HubConfig.MaxPerClient), before anything is upgraded or
// streamed, and has the connection give it back when it ends. Over the cap
// it answers 429 rate_limited with Retry-After.
func (s *server) admitLive(c *gin.Context, v *realtime.Viewer) bool {
	release, err := s.Hub.Admit(s.clientIP(c.Request))
	if err != nil {
		s.fail(c, err)
		return false
	}
	v.Leave = release
	return true
}
