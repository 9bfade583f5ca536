package sdk

import (
	"context"
	"errors"
	"iter"
	"net/http"
	"net/url"
	"strconv"
)

// CreatePoll creates a poll owned by the client's key (POST /v1/polls).
func (c *Client) CreatePoll(ctx context.Context, p CreatePollParams) (*Poll, error) {
	var out Poll
	if err := c.call(ctx, request{method: http.MethodPost, path: "/v1/polls", body: p}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetPoll returns a poll (GET /v1/polls/{id}). Owner-only fields are set
// only when the client's key owns the poll.
func (c *Client) GetPoll(ctx context.Context, id string) (*Poll, error) {
	var out Poll
	if err := c.call(ctx, request{method: http.MethodGet, path: "/v1/polls/" + seg(id)}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdatePoll changes a poll (PATCH /v1/polls/{id}) and returns it as changed.
func (c *Client) UpdatePoll(ctx context.Context, id string, p UpdatePollParams) (*Poll, error) {
	var out Poll
	if err := c.call(ctx, request{method: http.MethodPatch, path: "/v1/polls/" + seg(id), body: p}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ClosePoll closes a poll by hand (POST /v1/polls/{id}/close).
func (c *Client) ClosePoll(ctx context.Context, id string) (*Poll, error) {
	return c.pollAction(ctx, id, "close")
}

// OpenPoll opens a poll now (POST /v1/polls/{id}/open): it undoes a close
// by hand, a future opening time and a past closing time.
func (c *Client) OpenPoll(ctx context.Context, id string) (*Poll, error) {
	return c.pollAction(ctx, id, "open")
}

func (c *Client) pollAction(ctx context.Context, id, action string) (*Poll, error) {
	var out Poll
	if err := c.call(ctx, request{method: http.MethodPost, path: "/v1/polls/" + seg(id) + "/" + action}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeletePoll deletes a poll (DELETE /v1/polls/{id}). Its votes leave the
// results; analytics keep them for the owner's export. With Purge, the poll
// is erased everywhere instead.
func (c *Client) DeletePoll(ctx context.Context, id string, opts ...DeleteOption) error {
	var o deleteOptions
	for _, opt := range opts {
		opt(&o)
	}
	var q url.Values
	if o.purge {
		q = url.Values{"purge": {"true"}}
	}
	return c.call(ctx, request{method: http.MethodDelete, path: "/v1/polls/" + seg(id), query: q}, nil)
}

// DeleteOption changes what DeletePoll does.
type DeleteOption func(*deleteOptions)

type deleteOptions struct {
	purge bool
}

// Purge makes DeletePoll erase the poll (DELETE /v1/polls/{id}?purge=true):
// its votes leave the server's vote log, its counts and the records of who
// voted are forgotten, and its analytics rows are deleted, all before
// DeletePoll returns nil. It also erases a poll deleted before. A purge is
// idempotent: after an error (CodeInternal, or CodeOverloaded while the
// server's analytics catch up with its log) call DeletePoll with Purge
// again; it is not retried by itself.
func Purge() DeleteOption {
	return func(o *deleteOptions) { o.purge = true }
}

// ListPolls returns one page of the polls the client's key manages (an
// admin key: all polls), newest first (GET /v1/polls).
func (c *Client) ListPolls(ctx context.Context, p ListPollsParams) (*PollPage, error) {
	q := url.Values{}
	if p.Limit != 0 {
		q.Set("limit", strconv.Itoa(p.Limit))
	}
	if p.Cursor != "" {
		q.Set("cursor", p.Cursor)
	}
	if p.Status != "" {
		q.Set("status", string(p.Status))
	}
	var out struct {
		Polls      []Poll  `json:"polls"`
		NextCursor *string `json:"next_cursor"`
	}
	if err := c.call(ctx, request{method: http.MethodGet, path: "/v1/polls", query: q}, &out); err != nil {
		return nil, err
	}
	page := &PollPage{Polls: out.Polls}
	if out.NextCursor != nil {
		page.NextCursor = *out.NextCursor
	}
	return page, nil
}

// AllPolls iterates over every poll ListPolls would return, page after page,
// starting at p.Cursor. It stops at the first error, which it yields with a
// zero Poll.
//
//	for p, err := range client.AllPolls(ctx, sdk.ListPollsParams{Status: sdk.StatusOpen}) {
//		if err != nil { ... }
//	}
func (c *Client) AllPolls(ctx context.Context, p ListPollsParams) iter.Seq2[Poll, error] {
	return func(yield func(Poll, error) bool) {
		for {
			page, err := c.ListPolls(ctx, p)
			if err != nil {
				yield(Poll{}, err)
				return
			}
			for _, poll := range page.Polls {
				if !yield(poll, nil) {
					return
				}
			}
			if page.NextCursor == "" {
				return
			}
			if page.NextCursor == p.Cursor {
				yield(Poll{}, errors.New("sdk: list polls: the server repeated a cursor"))
				return
			}
			p.Cursor = page.NextCursor
		}
	}
}

// Results returns a poll's results (GET /v1/polls/{id}/results). Hidden
// results give an *Error with CodeResultsHidden; a key owning the poll
// always sees them.
func (c *Client) Results(ctx context.Context, pollID string) (*Results, error) {
	return c.VoterResults(ctx, pollID, "")
}

// VoterResults returns a poll's results as the given voter sees them: on an
// after_vote poll, once that voter (device id or voter token) has voted.
func (c *Client) VoterResults(ctx context.Context, pollID, voter string) (*Results, error) {
	var q url.Values
	if voter != "" {
		q = url.Values{"voter": {voter}}
	}
	var out Results
	if err := c.call(ctx, request{method: http.MethodGet, path: "/v1/polls/" + seg(pollID) + "/results", query: q}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
