package sdk

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"time"
)

// Timeline returns a poll's votes over time (GET
// /v1/polls/{id}/analytics/timeline; needs a key owning the poll).
func (c *Client) Timeline(ctx context.Context, pollID string, p TimelineParams) (*Timeline, error) {
	q := url.Values{}
	if !p.From.IsZero() {
		q.Set("from", p.From.UTC().Format(time.RFC3339))
	}
	if !p.To.IsZero() {
		q.Set("to", p.To.UTC().Format(time.RFC3339))
	}
	if p.Step != "" {
		q.Set("step", string(p.Step))
	}
	var out Timeline
	if err := c.call(ctx, request{method: http.MethodGet, path: "/v1/polls/" + seg(pollID) + "/analytics/timeline", query: q}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Breakdown returns a poll's votes grouped by country, region, device or
// referrer (GET /v1/polls/{id}/analytics/breakdown; needs a key owning the
// poll).
func (c *Client) Breakdown(ctx context.Context, pollID string, by Dimension) (*Breakdown, error) {
	var out Breakdown
	q := url.Values{"by": {string(by)}}
	if err := c.call(ctx, request{method: http.MethodGet, path: "/v1/polls/" + seg(pollID) + "/analytics/breakdown", query: q}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ExportVotes streams every stored vote of a poll as CSV (GET
// /v1/polls/{id}/votes.csv; needs a key owning the poll, deleted polls
// included). The first line is the header
// "vote_id,time,options,region,country,device,referrer"; options are
// space-separated option IDs. The caller must close the reader. When the
// server fails mid-stream it cuts the connection, and Read returns an error
// (io.ErrUnexpectedEOF) rather than a clean io.EOF.
//
// The client's HTTPClient timeout applies to the whole download: give
// Config.HTTPClient a longer one (or none) for large polls.
func (c *Client) ExportVotes(ctx context.Context, pollID string) (io.ReadCloser, error) {
	resp, err := c.send(ctx, request{method: http.MethodGet, path: "/v1/polls/" + seg(pollID) + "/votes.csv",
		header: http.Header{"Accept": {"text/csv"}}})
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}
