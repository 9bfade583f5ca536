package sdk

import (
	"bytes"
	"cmp"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Version is the SDK version sent in the User-Agent.
const Version = "0.1.0"

// Config configures a Client. Every field is optional.
type Config struct {
	// APIKey is sent as "Authorization: Bearer <key>". Zero value means no
	// key: only the public endpoints (get a poll, vote, results, live) work.
	APIKey string
	// HTTPClient sends the requests. Zero value means a client with a 30 s
	// timeout per request over http.DefaultTransport.
	HTTPClient *http.Client
	// MaxAttempts bounds how often Vote and VoteBatch send a request that
	// failed transiently (429, 502, 503, 504, network errors), first try
	// included. Zero value means 4; 1 turns retries off.
	MaxAttempts int
	// MaxRetryWait is the longest the client waits before one retry. When
	// the server asks for a longer Retry-After, the error is returned
	// instead. Zero value means 30 s.
	MaxRetryWait time.Duration
	// MinBackoff and MaxBackoff bound the exponential backoff, with jitter,
	// between retries that have no Retry-After (network errors) and between
	// Live reconnections. Zero values mean 100 ms and 10 s.
	MinBackoff, MaxBackoff time.Duration
	// UserAgent is added in front of the SDK's own User-Agent. Zero value
	// means just "pollcast-go/<Version>".
	UserAgent string
}

// Client talks to one pollcast server. It is safe for concurrent use.
type Client struct {
	base *url.URL
	cfg  Config
	hc   *http.Client
	ua   string
}

// New returns a client of the server at baseURL ("https://polls.example.com",
// with or without a path prefix in front of /v1).
func New(baseURL string, cfg Config) (*Client, error) {
	u, err := url.Parse(strings.TrimSpace(baseURL))
	if err != nil {
		return nil, fmt.Errorf("sdk: base URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("sdk: base URL %q: want http(s)://host[:port]", baseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("sdk: base URL %q: no query or fragment please", baseURL)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	switch {
	case cfg.MaxAttempts < 0:
		return nil, errors.New("sdk: MaxAttempts must not be negative")
	case cfg.MaxRetryWait < 0 || cfg.MinBackoff < 0 || cfg.MaxBackoff < 0:
		return nil, errors.New("sdk: durations must not be negative")
	}
	cfg.MaxAttempts = cmp.Or(cfg.MaxAttempts, 4)
	cfg.MaxRetryWait = cmp.Or(cfg.MaxRetryWait, 30*time.Second)
	cfg.MinBackoff = cmp.Or(cfg.MinBackoff, 100*time.Millisecond)
	cfg.MaxBackoff = max(cmp.Or(cfg.MaxBackoff, 10*time.Second), cfg.MinBackoff)
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	ua := "pollcast-go/" + Version
	if cfg.UserAgent != "" {
		ua = cfg.UserAgent + " " + ua
	}
	return &Client{base: u, cfg: cfg, hc: hc, ua: ua}, nil
}

// BaseURL returns the server's base URL as given to New, without a trailing
// slash.
func (c *Client) BaseURL() string { return c.base.String() }

// endpoint returns the URL of path (escaped, starting with "/") with query q.
func (c *Client) endpoint(path string, q url.Values) *url.URL {
	u := *c.base
	u.RawPath = c.base.EscapedPath() + path
	if p, err := url.PathUnescape(u.RawPath); err == nil {
		u.Path = p
	}
	if len(q) > 0 {
		u.RawQuery = q.Encode()
	}
	return &u
}

// request is one API call.
type request struct {
	method string
	path   string // escaped segments: use seg() for parameters
	query  url.Values
	body   any // encoded as JSON when not nil
	header http.Header
}

// seg escapes one path segment.
func seg(s string) string { return url.PathEscape(s) }

// send makes one attempt of r and returns the answer when its status is
// 2xx; otherwise the *Error of the answer or the transport's error.
func (c *Client) send(ctx context.Context, r request) (*http.Response, error) {
	var body io.Reader
	var data []byte
	if r.body != nil {
		var err error
		if data, err = json.Marshal(r.body); err != nil {
			return nil, fmt.Errorf("sdk: encode %s %s: %w", r.method, r.path, err)
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, c.endpoint(r.path, r.query).String(), body)
	if err != nil {
		return nil, fmt.Errorf("sdk: %s %s: %w", r.method, r.path, err)
	}
	for k, vs := range r.header {
		req.Header[k] = vs
	}
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "application/json")
	}
	req.Header.Set("User-Agent", c.ua)
	if c.cfg.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.APIKey)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		return nil, errorOf(resp)
	}
	return resp, nil
}

// call makes r once and decodes a JSON answer into out (unless out is nil).
func (c *Client) call(ctx context.Context, r request, out any) error {
	resp, err := c.send(ctx, r)
	if err != nil {
		return err
	}
	return decode(resp, out)
}

// callRetry makes r up to MaxAttempts times while it fails transiently.
// r must be safe to repeat (an idempotency key makes votes so).
func (c *Client) callRetry(ctx context.Context, r request, out any) (attempts int, err error) {
	for attempts = 1; ; attempts++ {
		var resp *http.Response
		resp, err = c.send(ctx, r)
		if err == nil {
			return attempts, decode(resp, out)
		}
		wait, retry := c.retryWait(ctx, err, attempts)
		if !retry {
			if attempts > 1 {
				err = fmt.Errorf("after %d attempts: %w", attempts, err)
			}
			return attempts, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return attempts, fmt.Errorf("after %d attempts: %w (gave up: %w)", attempts, err, ctx.Err())
		case <-t.C:
		}
	}
}

// retryWait says whether to try again after err, the failure of attempt
// number n, and how long to wait first.
func (c *Client) retryWait(ctx context.Context, err error, n int) (time.Duration, bool) {
	if n >= c.cfg.MaxAttempts || ctx.Err() != nil {
		return 0, false
	}
	var wait time.Duration
	var e *Error
	switch {
	case errors.As(err, &e):
		if !e.Temporary() {
			return 0, false
		}
		wait = e.RetryAfter
		if wait > c.cfg.MaxRetryWait {
			return 0, false
		}
		if wait == 0 {
			wait = c.backoff(n)
		}
	case isNetworkError(err):
		wait = c.backoff(n)
	default:
		return 0, false
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
		return 0, false // no time left to wait: answer now
	}
	return wait, true
}

// isNetworkError reports whether err is a failure to reach the server or to
// read its answer, which a request with an idempotency key may retry.
// The caller has checked that its context is still alive.
func isNetworkError(err error) bool {
	var ue *url.Error
	return errors.As(err, &ue) || errors.Is(err, io.ErrUnexpectedEOF)
}

// backoff returns the wait before retry number n (1-based): exponential
// from MinBackoff up to MaxBackoff, with "equal jitter" (half fixed, half
// random) so that clients cut off together do not come back together.
func (c *Client) backoff(n int) time.Duration {
	d := c.cfg.MinBackoff
	for i := 1; i < n && d < c.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, c.cfg.MaxBackoff)
	half := d / 2
	return half + rand.N(half+1)
}

// decode reads a JSON answer into out and closes the body.
func decode(resp *http.Response, out any) error {
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("sdk: decode %s %s answer: %w", resp.Request.Method, resp.Request.URL.Path, err)
	}
	return nil
}

// NewIdempotencyKey returns a random idempotency key: 128 bits, hex.
func NewIdempotencyKey() string {
	var b [16]byte
	_, _ = crand.Read(b[:]) // never fails (Go ≥ 1.24)
	return hex.EncodeToString(b[:])
}
