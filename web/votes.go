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
	"github.com/pollcast/pollcast/internal/jsonscan"
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

// voteRequest builds the ingest request of a vote arriving over HTTP: the
// request's identity, and the body's fields. An Idempotency-Key header
// stands for the body's idempotency_key.
func (s *server) voteRequest(r *http.Request, pollID string, in voteInput) ingest.Request {
	req := s.identity(r)
	req.PollID, req.Options, req.Voter, req.IdempotencyKey = pollID, in.Options, in.Voter, in.IdempotencyKey
	if req.IdempotencyKey == "" {
		req.IdempotencyKey = r.Header.Get("Idempotency-Key")
	}
	if in.Referrer != "" {
		req.Referrer = referrerHost(in.Referrer, r)
	}
	return req
}

// identity returns what an HTTP request says of the votes it carries,
// whatever the body: the client, the embedding page, the user agent. The
// votes of a batch or a socket share it.
func (s *server) identity(r *http.Request) ingest.Request {
	return ingest.Request{ClientIP: s.clientIP(r), Origin: s.foreignOrigin(r),
		Referrer: referrerHost("", r), UserAgent: r.UserAgent()}
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
	// The request's identity is derived once for its votes. No
	// Idempotency-Key header: one key for a thousand votes would make
	// them one vote.
	base := s.identity(c.Request)
	base.Origin = "" // a server-side integration speaks for the poll's owner
	base.Trusted = true
	var lastReferrer, lastHost string
	for i, v := range in.Votes {
		p, ok := s.Catalog.Poll(v.PollID)
		if ok && !owns(k, p) {
			results[i] = resultOf("", poll.Errorf(poll.ErrForbidden, "this key does not own poll %q", v.PollID))
			continue
		}
		req := base
		req.PollID, req.Options, req.Voter, req.IdempotencyKey = v.PollID, v.Options, v.Voter, v.IdempotencyKey
		if v.Referrer != "" {
			if v.Referrer != lastReferrer {
				lastReferrer, lastHost = v.Referrer, referrerHost(v.Referrer, c.Request)
			}
			req.Referrer = lastHost
		}
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
	c.Data(http.StatusOK, "application/json; charset=utf-8", appendBatchResults(nil, results))
}

// appendBatchResults appends a batch's answer, {"results": [...]}, byte
// for byte as encoding/json encodes it (TestBatchResultsEncoding): a
// thousand results took a tenth of a batch's CPU through encoding/json.
func appendBatchResults(b []byte, results []batchResult) []byte {
	if b == nil {
		b = make([]byte, 0, 16+len(results)*48)
	}
	b = append(b, `{"results":[`...)
	for i := range results {
		r := &results[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"status":`...)
		b = strconv.AppendInt(b, int64(r.Status), 10)
		if r.VoteID != "" {
			b = jsonscan.AppendString(append(b, `,"vote_id":`...), r.VoteID)
		}
		if r.Code != "" {
			b = jsonscan.AppendString(append(b, `,"code":`...), string(r.Code))
		}
		if r.Detail != "" {
			b = jsonscan.AppendString(append(b, `,"detail":`...), r.Detail)
		}
		b = append(b, '}')
	}
	return append(b, "]}\n"...)
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
	base := s.identity(r) // no Idempotency-Key header: it would make the socket's votes one
	base.PollID = pollID
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
