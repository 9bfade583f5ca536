package poll

import (
	"fmt"
	"time"
)

// Code is a stable, machine-readable error code of API.md.
type Code string

// The error codes of API.md. They are part of the public contract.
const (
	CodeBadRequest        Code = "bad_request"
	CodeBodyTooLarge      Code = "body_too_large"
	CodeInvalid           Code = "invalid"
	CodeUnauthorized      Code = "unauthorized"
	CodeForbidden         Code = "forbidden"
	CodeNotFound          Code = "not_found"
	CodeHasVotes          Code = "has_votes"
	CodeAlreadyVoted      Code = "already_voted"
	CodePollClosed        Code = "poll_closed"
	CodeInvalidOption     Code = "invalid_option"
	CodeInvalidVoterToken Code = "invalid_voter_token"
	CodeOriginNotAllowed  Code = "origin_not_allowed"
	CodeRateLimited       Code = "rate_limited"
	CodeOverloaded        Code = "overloaded"
	CodeResultsHidden     Code = "results_hidden"
	CodeConflict          Code = "conflict"
	CodeInternal          Code = "internal"
	// CodeRequestTimeout is a request whose body did not arrive within the
	// server's body deadline; the connection is closed after the answer.
	CodeRequestTimeout Code = "request_timeout"
	// CodeMethodNotAllowed is answered by the router (package web) to a
	// known path asked with another method; no domain call returns it.
	CodeMethodNotAllowed Code = "method_not_allowed"
)

// Codes returns every code above, in the order they are declared. The SDK
// keeps its own copy of the list; a test checks that the two are the same.
func Codes() []Code {
	return []Code{
		CodeBadRequest, CodeBodyTooLarge, CodeInvalid, CodeUnauthorized, CodeForbidden, CodeNotFound,
		CodeHasVotes, CodeAlreadyVoted, CodePollClosed, CodeInvalidOption, CodeInvalidVoterToken,
		CodeOriginNotAllowed, CodeRateLimited, CodeOverloaded, CodeResultsHidden, CodeConflict,
		CodeInternal, CodeMethodNotAllowed, CodeRequestTimeout,
	}
}

// Error is a domain error carrying an API.md code. Detail is safe to show to
// the client; internal causes are never put in it. RetryAfter, when non-zero,
// tells the client when to try again (rate_limited, overloaded).
//
// errors.Is(err, ErrXxx) matches any *Error with the same code, so callers
// compare against the sentinels below whatever the detail.
type Error struct {
	Code       Code
	Detail     string
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.Detail == "" {
		return string(e.Code)
	}
	return string(e.Code) + ": " + e.Detail
}

// Is reports whether target is an *Error with the same code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
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

// Errorf returns a new *Error with the code of sentinel and a formatted detail.
func Errorf(sentinel *Error, format string, args ...any) *Error {
	return &Error{Code: sentinel.Code, Detail: fmt.Sprintf(format, args...)}
}

// Invalid returns a validation error naming the offending field.
func Invalid(field, format string, args ...any) *Error {
	return &Error{Code: CodeInvalid, Detail: field + ": " + fmt.Sprintf(format, args...)}
}
