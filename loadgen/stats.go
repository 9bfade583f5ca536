package loadgen

import (
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
)

// stats are the counters of a run. Every method is safe for
// concurrent use.
type stats struct {
	sent, ok, failed atomic.Int64
	unknown          atomic.Int64 // failed without an answer: maybe counted
	lat              *histogram   // request latency

	mu         sync.Mutex
	codes      map[string]int64
	connErrors int64
	connErr    string // the first connection error
}

// codeTransport is the error code of votes that got no answer.
const codeTransport = "transport"

func newStats() *stats {
	return &stats{lat: newHistogram(), codes: map[string]int64{}}
}

// fail counts n votes that failed with code.
func (s *stats) fail(code string, n int64) {
	s.failed.Add(n)
	if code == codeTransport {
		s.unknown.Add(n)
	}
	s.mu.Lock()
	s.codes[code] += n
	s.mu.Unlock()
}

// connError counts a connection that could not be opened or failed.
func (s *stats) connError(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.connErrors++
	if s.connErr == "" {
		s.connErr = err.Error()
	}
}

// connErrorCounts returns the number of connection errors and the first.
func (s *stats) connErrorCounts() (int64, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connErrors, s.connErr
}

func (s *stats) codeCounts() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.codes)
}

// problemCode returns the API code of a failed answer: the problem
// document's code, else "http_STATUS".
func problemCode(resp *http.Response) string {
	var p struct {
		Code string `json:"code"`
	}
	if json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&p) == nil && p.Code != "" {
		return p.Code
	}
	return "http_" + strconv.Itoa(resp.StatusCode)
}

// statusCode names a non-202 answer without a code.
func statusCode(status int, code string) string {
	if code != "" {
		return code
	}
	return "http_" + strconv.Itoa(status)
}
