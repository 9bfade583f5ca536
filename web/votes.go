package web

import (
	"context"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/pollcast/pollcast/ingest"
	"github.com/pollcast/pollcast/poll"
	"github.com/pollcast/pollcast/realtime"
)

const maxBatchVotes = 1000

// voteInput is the body of POST /v1/polls/{id}/votes.
type voteInput struct {
	Options        []string `json:"options"`
	Voter          string   `json:"voter"`
	IdempotencyKey string   `json:"idempotency_key"`
	// Referrer is the page the poll is embedded on (the widget sends it).
	Referrer string `json:"referrer"`
}

type voteAccepted struct {
	VoteID string `json:"vote_id"`
	PollID string `json:"poll_id"`
	Status string `json:"status"`
}

// voteRequest builds the ingest request of a vote arriving over HTTP.
func (s *server) voteRequest(r *http.Request, pollID string, in voteInput) ingest.Request {
	key := in.IdempotencyKey
	if key == "" {
		key = r.Header.Get("Idempotency-Key")
	}
	return ingest.Request{
		PollID: pollID, Options: in.Options, Voter: in.Voter, IdempotencyKey: key,
		ClientIP: s.clientIP(r), Origin: s.foreignOrigin(r),
		Referrer: referrerHost(in.Referrer, r), UserAgent: r.UserAgent(),
	}
}

// referrerHost returns the host of the embedding page: what the widget
// says, else the Origin or Referer header.
func referrerHost(given string, r *http.Request) string {
	for _, v := range []string{given, r.Header.Get("Origin"), r.Header.Get("Referer")} {
		if v == "" {
			continue
		}
		if !strings.Contains(v, "://") {
			v = "https://" + v
		}
		if u, err := url.Parse(v); err == nil && u.Hostname() != "" && len(u.Hostname()) <= 253 {
			return strings.ToLower(u.Hostname())
		}
	}
	return ""
}

func (s *server) vote(c *gin.Context) {
	var in voteInput
	if err := decodeVote(c, &in); err != nil {
		s.fail(c, err)
		return
	}
	acc, err := s.Ingest.Vote(c.Request.Context(), s.voteRequest(c.Request, c.Param("id"), in))
	if err != nil {
		s.fail(c, err)
		return
	}
	writeJSON(c, http.StatusAccepted, voteAccepted{VoteID: acc.VoteID, PollID: acc.PollID, Status: "accepted"})
}

type batchItem struct {
	PollID         string   `json:"poll_id"`
	Options        []string `json:"options"`
	Voter          string   `json:"voter"`
	IdempotencyKey string   `json:"idempotency_key"`
	Referrer       string   `json:"referrer"`
	// IP is the end voter's address as the integration saw it, for ip
	// polls; without it the vote counts as coming from the caller.
	IP string `json:"ip"`
}

type batchResult struct {
	Status int       `json:"status"`
	VoteID string    `json:"vote_id,omitempty"`
	Code   poll.Code `json:"code,omitempty"`
	Detail string    `json:"detail,omitempty"`
}

func (s *server) voteBatch(c *gin.Context) {
	var in batchInput
	if err := decodeBatch(c, &in); err != nil {
		s.fail(c, err)
		return
	}
	if len(in.Votes) == 0 || len(in.Votes) > maxBatchVotes {
		s.fail(c, poll.Invalid("votes", "send 1 to %d votes", maxBatchVotes))
		return
	}
	k := keyOf(c)
	results := make([]batchResult, len(in.Votes))
	reqs := make([]ingest.Request, 0, len(in.Votes))
	idx := make([]int, 0, len(in.Votes))
	for i, v := range in.Votes {
		p, ok := s.Catalog.Poll(v.PollID)
		if ok && !owns(k, p) {
			results[i] = resultOf("", poll.Errorf(poll.ErrForbidden, "this key does not own poll %q", v.PollID))
			continue
		}
		req := s.voteRequest(c.Request, v.PollID, voteInput{
			Options: v.Options, Voter: v.Voter, IdempotencyKey: v.IdempotencyKey, Referrer: v.Referrer,
		})
		req.Origin = "" // a server-side integration speaks for the poll's owner
		req.Trusted = true
		if v.IP != "" {
			ip, err := netip.ParseAddr(v.IP)
			if err != nil {
				results[i] = resultOf("", poll.Invalid("votes["+strconv.Itoa(i)+"].ip", "not an IP address"))
				continue
			}
			req.ClientIP = ip
		}
		reqs = append(reqs, req)
		idx = append(idx, i)
	}
	for j, o := range s.Ingest.VoteBatch(c.Request.Context(), reqs) {
		results[idx[j]] = resultOf(o.VoteID, o.Err)
	}
	writeJSON(c, http.StatusOK, map[string]any{"results": results})
}

func resultOf(voteID string, err error) batchResult {
	if err == nil {
		return batchResult{Status: http.StatusAccepted, VoteID: voteID}
	}
	status, code, detail := StatusOf(err)
	return batchResult{Status: status, Code: code, Detail: detail}
}

// socketVoters returns the functions that cast votes sent over a live
// socket, one or several at once, with the identity of the HTTP request
// that opened it.
func (s *server) socketVoters(r *http.Request, pollID, voter string) (
	func(context.Context, realtime.VoteMessage) realtime.VoteReply,
	func(context.Context, []realtime.VoteMessage) []realtime.VoteReply,
) {
	base := s.voteRequest(r, pollID, voteInput{})
	request := func(m realtime.VoteMessage) ingest.Request {
		req := base
		req.Options, req.Voter, req.IdempotencyKey = m.Options, m.Voter, m.IdempotencyKey
		if req.Voter == "" {
			req.Voter = voter
		}
		return req
	}
	reply := func(acc ingest.Accepted, err error) realtime.VoteReply {
		if err != nil {
			status, code, detail := StatusOf(err)
			return realtime.VoteReply{Status: status, Code: string(code), Detail: detail}
		}
		return realtime.VoteReply{Status: http.StatusAccepted, VoteID: acc.VoteID}
	}
	one := func(ctx context.Context, m realtime.VoteMessage) realtime.VoteReply {
		return reply(s.Ingest.Vote(ctx, request(m)))
	}
	many := func(ctx context.Context, ms []realtime.VoteMessage) []realtime.VoteReply {
		reqs := make([]ingest.Request, len(ms))
		for i, m := range ms {
			reqs[i] = request(m)
		}
		out := make([]realtime.VoteReply, len(ms))
		for i, o := range s.Ingest.VoteBatch(ctx, reqs) {
			out[i] = reply(o.Accepted, o.Err)
		}
		return out
	}
	return one, many
}
