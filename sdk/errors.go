package sdk

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Code is a stable, machine-readable error code of the pollcast API
// (API.md). It is the "code" member of the server's problem documents.
type Code string

// The error codes of API.md.
const (
	CodeBadRequest        Code = "bad_request"         // 400: malformed JSON or unknown fields
	CodeBodyTooLarge      Code = "body_too_large"      // 413
	CodeInvalid           Code = "invalid"             // 422: a field fails validation; Detail names it
	CodeUnauthorized      Code = "unauthorized"        // 401: missing or unknown API key
	CodeForbidden         Code = "forbidden"           // 403: the key lacks the right
	CodeNotFound          Code = "not_found"           // 404
	CodeHasVotes          Code = "has_votes"           // 409: options cannot be removed once votes exist
	CodeAlreadyVoted      Code = "already_voted"       // 409: the dedupe policy refused a second vote
	CodePollClosed        Code = "poll_closed"         // 409: closed or not yet open
	CodeInvalidOption     Code = "invalid_option"      // 422: unknown option, wrong count, duplicates
	CodeInvalidVoterToken Code = "invalid_voter_token" // 401: token polls
	CodeOriginNotAllowed  Code = "origin_not_allowed"  // 403
	CodeRateLimited       Code = "rate_limited"        // 429, with Retry-After
	CodeOverloaded        Code = "overloaded"          // 503, with Retry-After: the vote log is unreachable or behind
	CodeResultsHidden     Code = "results_hidden"      // 403: results_visibility hides them from this caller
	CodeConflict          Code = "conflict"            // 409: any other conflict (a key deleting itself)
	CodeMethodNotAllowed  Code = "method_not_allowed"  // 405
	CodeInternal          Code = "internal"            // 500
	CodeRequestTimeout    Code = "request_timeout"     // 408: the request body did not arrive in time
)

// Codes returns every code above, in the order they are declared.
func Codes() []Code {
	return []Code{
		CodeBadRequest, CodeBodyTooLarge, CodeInvalid, CodeUnauthorized, CodeForbidden, CodeNotFound,
		CodeHasVotes, CodeAlreadyVoted, CodePollClosed, CodeInvalidOption, CodeInvalidVoterToken,
		CodeOriginNotAllowed, CodeRateLimited, CodeOverloaded, CodeResultsHidden, CodeConflict,
		CodeMethodNotAllowed, CodeInternal, CodeRequestTimeout,
	}
}

// Error is an answer of the server other than success: an RFC 9457 problem
// document with its HTTP status. Every method of Client returns it (possibly
// wrapped: use errors.As) when the server answered with an error.
//
// errors.Is(err, sdk.ErrAlreadyVoted) matches any *Error with the same Code,
// whatever its detail.
type Error struct {
	// Status is the HTTP status code.
	Status int
	// Code is the API.md error code. It is empty when the answer was not a
	// problem document (a proxy's error page, say).
	Code Code
	// Title is the problem's short summary; Type its URI.
	Title, Type string
	// Detail explains this occurrence. It is meant for people, not for
	// branching: branch on Code.
	Detail string
	// RetryAfter is the server's Retry-After, zero when it sent none.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("pollcast: ")
	if e.Status != 0 {
		b.WriteString(strconv.Itoa(e.Status))
		b.WriteByte(' ')
	}
	if e.Code != "" {
		b.WriteString(string(e.Code))
	} else {
		b.WriteString(http.StatusText(e.Status))
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	return b.String()
}

// Is reports whether target is an *Error with the same Code (and, when the
// target has one, the same Status). It makes errors.Is work with the
// sentinels below.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok || t.Code != e.Code {
		return false
	}
	return t.Status == 0 || t.Status == e.Status
}

// Temporary reports whether trying again later may succeed: the server was
// rate limiting (429), unavailable (502, 503, 504), or the request body
// did not arrive in time (408).
func (e *Error) Temporary() bool {
	switch e.Status {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout,
		http.StatusRequestTimeout: // the body did not arrive: nothing was done
		return true
	}
	return false
}

// Sentinels, one per code, for errors.Is.
var (
	ErrBadRequest        = &Error{Code: CodeBadRequest}
	ErrBodyTooLarge      = &Error{Code: CodeBodyTooLarge}
	ErrInvalid           = &Error{Code: CodeInvalid}
	ErrUnauthorized      = &Error{Code: CodeUnauthorized}
	ErrForbidden         = &Error{Code: CodeForbidden}
	ErrNotFound          = &Error{Code: CodeNotFound}
	ErrHasVotes          = &Error{Code: CodeHasVotes}
	ErrAlreadyVoted      = &Error{Code: CodeAlreadyVoted}
	ErrPollClosed        = &Error{Code: CodePollClosed}
	ErrInvalidOption     = &Error{Code: CodeInvalidOption}
	ErrInvalidVoterToken = &Error{Code: CodeInvalidVoterToken}
	ErrOriginNotAllowed  = &Error{Code: CodeOriginNotAllowed}
	ErrRateLimited       = &Error{Code: CodeRateLimited}
	ErrOverloaded        = &Error{Code: CodeOverloaded}
	ErrResultsHidden     = &Error{Code: CodeResultsHidden}
	ErrConflict          = &Error{Code: CodeConflict}
	ErrRequestTimeout    = &Error{Code: CodeRequestTimeout}
)

// IsCode reports whether err is, or wraps, an *Error with the given code.
func IsCode(err error, code Code) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// ErrorCode returns the API.md code of err, or "" when err carries none
// (a network error, say).
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 64 << 10

// errorOf builds the *Error of a failed answer; it reads (part of) the body.
func errorOf(resp *http.Response) *Error {
	e := &Error{Status: resp.StatusCode, RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	var p struct {
		Type   string `json:"type"`
		Title  string `json:"title"`
		Code   Code   `json:"code"`
		Detail string `json:"detail"`
	}
	if (mt == "application/problem+json" || mt == "application/json") && json.Unmarshal(body, &p) == nil {
		e.Type, e.Title, e.Code, e.Detail = p.Type, p.Title, p.Code, p.Detail
		return e
	}
	// Not a problem document: keep the start of the text for people.
	text := strings.TrimSpace(string(body))
	if len(text) > 200 {
		text = text[:200] + "…"
	}
	if strings.HasPrefix(mt, "text/plain") {
		e.Detail = text
	}
	return e
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date.
// It returns zero when the header is absent or malformed.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0
		}
		if n > 1<<31 {
			n = 1 << 31
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}
