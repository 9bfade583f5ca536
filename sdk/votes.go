package sdk

import (
	"context"
	"errors"
	"net/http"
)

// Vote is one ballot.
type Vote struct {
	// Options are the chosen option IDs: exactly one on a single-choice
	// poll, 1..MaxChoices distinct ones on a multiple-choice poll.
	Options []string
	// Voter identifies the voter: a device id on DedupeDevice polls, the
	// voter token (a JWT) on DedupeToken polls; ignored otherwise.
	Voter string
	// IdempotencyKey makes retries safe: votes with the same key are
	// counted once. Empty means Vote generates one (NewIdempotencyKey) and
	// uses it for all its attempts. Set it yourself to retry across calls
	// or processes.
	IdempotencyKey string
	// Referrer is the page the poll is shown on (for analytics). Optional.
	Referrer string
}

// Receipt is the answer to an accepted vote: it is stored in the durable
// log and will be counted exactly once.
type Receipt struct {
	VoteID string `json:"vote_id"`
	PollID string `json:"poll_id"`
	// Status is "accepted".
	Status string `json:"status"`
	// IdempotencyKey is the key the vote was sent with.
	IdempotencyKey string `json:"-"`
	// Attempts is how many requests it took (1 unless it was retried).
	Attempts int `json:"-"`
}

type voteBody struct {
	Options        []string `json:"options"`
	Voter          string   `json:"voter,omitempty"`
	IdempotencyKey string   `json:"idempotency_key"`
	Referrer       string   `json:"referrer,omitempty"`
}

// Vote casts a vote (POST /v1/polls/{id}/votes). It retries transient
// failures — 429 rate_limited and 503 overloaded after the server's
// Retry-After, 502/504, 408 and network errors after a backoff — with the same
// idempotency key, so the vote is counted once however often it is sent.
// It stops after Config.MaxAttempts requests, when waiting would pass ctx's
// deadline, or when ctx ends, and then returns the last failure (an *Error
// when the server answered).
//
// Refusals are *Error values: CodeAlreadyVoted, CodePollClosed,
// CodeInvalidOption, CodeNotFound, CodeInvalidVoterToken,
// CodeOriginNotAllowed, CodeRateLimited, CodeOverloaded.
func (c *Client) Vote(ctx context.Context, pollID string, v Vote) (*Receipt, error) {
	if v.IdempotencyKey == "" {
		v.IdempotencyKey = NewIdempotencyKey()
	}
	r := request{method: http.MethodPost, path: "/v1/polls/" + seg(pollID) + "/votes",
		body: voteBody{Options: v.Options, Voter: v.Voter, IdempotencyKey: v.IdempotencyKey, Referrer: v.Referrer},
		// net/http may itself resend a request with this header when a
		// kept-alive connection turns out dead.
		header: http.Header{"Idempotency-Key": {v.IdempotencyKey}}}
	var out Receipt
	n, err := c.callRetry(ctx, r, &out)
	if err != nil {
		return nil, err
	}
	out.IdempotencyKey, out.Attempts = v.IdempotencyKey, n
	return &out, nil
}

// BatchVote is one vote of VoteBatch.
type BatchVote struct {
	PollID string `json:"poll_id"`
	// Options, Voter, IdempotencyKey and Referrer are as in Vote. An empty
	// IdempotencyKey is generated.
	Options        []string `json:"options"`
	Voter          string   `json:"voter,omitempty"`
	IdempotencyKey string   `json:"idempotency_key"`
	Referrer       string   `json:"referrer,omitempty"`
	// IP is the end voter's address as the integration saw it, for
	// DedupeIP polls and analytics. Empty means the caller's address.
	IP string `json:"ip,omitempty"`
}

// BatchResult is the outcome of one vote of a batch.
type BatchResult struct {
	// Status is the HTTP status the single-vote endpoint would have given:
	// 202 when accepted.
	Status int `json:"status"`
	// VoteID is set when accepted.
	VoteID string `json:"vote_id,omitempty"`
	// Code and Detail are set when refused.
	Code   Code   `json:"code,omitempty"`
	Detail string `json:"detail,omitempty"`
	// IdempotencyKey is the key the vote was sent with (generated when the
	// BatchVote had none): resend a failed vote with it.
	IdempotencyKey string `json:"-"`
}

// Accepted reports whether the vote was stored.
func (r BatchResult) Accepted() bool { return r.Status == http.StatusAccepted }

// Err returns nil for an accepted vote and the *Error of a refused one.
func (r BatchResult) Err() error {
	if r.Accepted() {
		return nil
	}
	return &Error{Status: r.Status, Code: r.Code, Detail: r.Detail}
}

// MaxBatch is the most votes one VoteBatch call may carry.
const MaxBatch = 1000

// VoteBatch casts up to MaxBatch votes in one request (POST
// /v1/votes/batch; needs a key owning the polls). The results are in the
// order of votes, each with the status the single-vote endpoint would give.
// The whole request is retried like Vote (every vote keeps its idempotency
// key, so none is counted twice); votes refused one by one, even
// transiently, are reported in their BatchResult and not retried.
func (c *Client) VoteBatch(ctx context.Context, votes []BatchVote) ([]BatchResult, error) {
	if len(votes) == 0 || len(votes) > MaxBatch {
		return nil, errors.New("sdk: vote batch: send 1 to 1000 votes")
	}
	body := struct {
		Votes []BatchVote `json:"votes"`
	}{make([]BatchVote, len(votes))}
	for i, v := range votes {
		if v.IdempotencyKey == "" {
			v.IdempotencyKey = NewIdempotencyKey()
		}
		body.Votes[i] = v
	}
	var out struct {
		Results []BatchResult `json:"results"`
	}
	if _, err := c.callRetry(ctx, request{method: http.MethodPost, path: "/v1/votes/batch", body: body}, &out); err != nil {
		return nil, err
	}
	if len(out.Results) != len(votes) {
		return nil, errors.New("sdk: vote batch: the server answered a different number of results")
	}
	for i := range out.Results {
		out.Results[i].IdempotencyKey = body.Votes[i].IdempotencyKey
	}
	return out.Results, nil
}
