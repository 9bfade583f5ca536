package web

import (
	"errors"
	"math"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/pollcast/pollcast/poll"
)

// statusOf maps every API.md error code to its HTTP status.
var statusOf = map[poll.Code]int{
	poll.CodeBadRequest:        http.StatusBadRequest,
	poll.CodeBodyTooLarge:      http.StatusRequestEntityTooLarge,
	poll.CodeInvalid:           http.StatusUnprocessableEntity,
	poll.CodeUnauthorized:      http.StatusUnauthorized,
	poll.CodeForbidden:         http.StatusForbidden,
	poll.CodeNotFound:          http.StatusNotFound,
	poll.CodeHasVotes:          http.StatusConflict,
	poll.CodeAlreadyVoted:      http.StatusConflict,
	poll.CodePollClosed:        http.StatusConflict,
	poll.CodeInvalidOption:     http.StatusUnprocessableEntity,
	poll.CodeInvalidVoterToken: http.StatusUnauthorized,
	poll.CodeOriginNotAllowed:  http.StatusForbidden,
	poll.CodeRateLimited:       http.StatusTooManyRequests,
	poll.CodeOverloaded:        http.StatusServiceUnavailable,
	poll.CodeResultsHidden:     http.StatusForbidden,
	poll.CodeConflict:          http.StatusConflict,
	poll.CodeInternal:          http.StatusInternalServerError,
	poll.CodeRequestTimeout:    http.StatusRequestTimeout,
}

var titleOf = map[poll.Code]string{
	poll.CodeBadRequest:        "Malformed request",
	poll.CodeBodyTooLarge:      "Request body too large",
	poll.CodeInvalid:           "Invalid request",
	poll.CodeUnauthorized:      "Missing or unknown API key",
	poll.CodeForbidden:         "Not allowed with this API key",
	poll.CodeNotFound:          "Not found",
	poll.CodeHasVotes:          "The poll has votes",
	poll.CodeAlreadyVoted:      "Already voted",
	poll.CodePollClosed:        "The poll is not open",
	poll.CodeInvalidOption:     "Invalid option choice",
	poll.CodeInvalidVoterToken: "Invalid voter token",
	poll.CodeOriginNotAllowed:  "Origin not allowed",
	poll.CodeRateLimited:       "Too many requests",
	poll.CodeOverloaded:        "Temporarily overloaded",
	poll.CodeResultsHidden:     "Results are hidden",
	poll.CodeConflict:          "Conflict",
	poll.CodeInternal:          "Internal error",
	poll.CodeRequestTimeout:    "Request body too slow",
}

// Problem is an RFC 9457 problem document.
type Problem struct {
	Type   string    `json:"type"`
	Title  string    `json:"title"`
	Status int       `json:"status"`
	Code   poll.Code `json:"code"`
	Detail string    `json:"detail,omitempty"`
}

// problemOf turns any error into the problem document shown to the client.
// Errors that are not *poll.Error are internal: their text is not shown.
func problemOf(err error) (Problem, *poll.Error) {
	var pe *poll.Error
	if !errors.As(err, &pe) {
		pe = &poll.Error{Code: poll.CodeInternal, Detail: "something went wrong on our side; try again"}
	}
	status, ok := statusOf[pe.Code]
	if !ok {
		status = http.StatusInternalServerError
	}
	return Problem{
		Type: "urn:pollcast:problem:" + string(pe.Code), Title: titleOf[pe.Code],
		Status: status, Code: pe.Code, Detail: pe.Detail,
	}, pe
}

// StatusOf returns the HTTP status and code API.md gives an error.
func StatusOf(err error) (int, poll.Code, string) {
	p, _ := problemOf(err)
	return p.Status, p.Code, p.Detail
}

// fail answers the request with the problem document of err and aborts it.
func (s *server) fail(c *gin.Context, err error) {
	p, pe := problemOf(err)
	if p.Code == poll.CodeInternal {
		s.log.Error("request failed", "method", c.Request.Method, "path", c.FullPath(), "err", err)
	}
	if pe.RetryAfter > 0 {
		c.Header("Retry-After", strconv.Itoa(int(math.Ceil(pe.RetryAfter.Seconds()))))
	}
	c.Header("Content-Type", "application/problem+json")
	c.Header("Cache-Control", "no-store")
	c.AbortWithStatus(p.Status)
	writeJSONBody(c, p)
}
