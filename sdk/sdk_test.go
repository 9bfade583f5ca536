package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// The client is tested against a real server in cmd/pollcast (sdk_test.go,
// client_test.go); these are the parts that need none.

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0}, {"3", 3 * time.Second}, {" 1 ", time.Second}, {"-1", 0}, {"soon", 0},
		{"Sun, 22 Nov 2026 10:00:05 GMT", 5 * time.Second},
		{"Sun, 22 Nov 2026 09:00:00 GMT", 0},
	} {
		if got := parseRetryAfter(tc.in, now); got != tc.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestBackoffGrowsWithJitterWithinBounds(t *testing.T) {
	c, err := New("http://x", Config{MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= 40; n++ {
		ceiling := min(100*time.Millisecond<<min(n-1, 20), time.Second)
		for range 50 {
			if d := c.backoff(n); d < ceiling/2 || d > ceiling {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", n, d, ceiling/2, ceiling)
			}
		}
	}
}

func TestNewValidates(t *testing.T) {
	for _, bad := range []string{"", "127.0.0.1:8080", "ftp://x", "http://", "http://x/?a=b"} {
		if _, err := New(bad, Config{}); err == nil {
			t.Errorf("New(%q) accepted", bad)
		}
	}
	if _, err := New("http://x", Config{MaxAttempts: -1}); err == nil {
		t.Error("negative MaxAttempts accepted")
	}
	c, err := New("https://polls.example.com/base/", Config{})
	if err != nil || c.BaseURL() != "https://polls.example.com/base" || c.cfg.MaxAttempts != 4 {
		t.Fatalf("New: %v %v %+v", c.BaseURL(), err, c.cfg)
	}
	if got := c.endpoint("/v1/polls/"+seg("a/b?"), nil).String(); got != "https://polls.example.com/base/v1/polls/a%2Fb%3F" {
		t.Fatalf("endpoint %s", got)
	}
}

func TestParamsJSON(t *testing.T) {
	closes := time.Date(2026, 12, 1, 18, 0, 0, 0, time.UTC)
	data, _ := json.Marshal(CreatePollParams{Question: "Q?", Options: []string{"A", "B"}, ClosesAt: &closes})
	if want := `{"question":"Q?","options":[{"label":"A"},{"label":"B"}],"closes_at":"2026-12-01T18:00:00Z"}`; string(data) != want {
		t.Errorf("create body %s, want %s", data, want)
	}
	q := "New?"
	data, _ = json.Marshal(UpdatePollParams{Question: &q, ClearOpensAt: true, ClosesAt: &closes, AllowedOrigins: &[]string{},
		Options: []Option{{ID: "a", Label: "A"}, {Label: "C"}}})
	if want := `{"allowed_origins":[],"closes_at":"2026-12-01T18:00:00Z","opens_at":null,"options":[{"id":"a","label":"A"},{"label":"C"}],"question":"New?"}`; string(data) != want {
		t.Errorf("patch body %s, want %s", data, want)
	}
	if data, _ = json.Marshal(UpdatePollParams{}); string(data) != "{}" {
		t.Errorf("empty patch %s", data)
	}
}

func TestErrorMatching(t *testing.T) {
	err := fmt.Errorf("wrapped: %w", &Error{Status: 409, Code: CodeAlreadyVoted, Detail: "again"})
	if !errors.Is(err, ErrAlreadyVoted) || errors.Is(err, ErrPollClosed) || !IsCode(err, CodeAlreadyVoted) ||
		ErrorCode(err) != CodeAlreadyVoted || ErrorCode(errors.New("x")) != "" {
		t.Fatal("matching a wrapped *Error")
	}
	if !errors.Is(err, &Error{Status: 409, Code: CodeAlreadyVoted}) || errors.Is(err, &Error{Status: 500, Code: CodeAlreadyVoted}) {
		t.Fatal("matching with a status")
	}
	for _, tc := range []struct {
		e    *Error
		want string
	}{
		{&Error{Status: 409, Code: CodeAlreadyVoted, Detail: "again"}, "pollcast: 409 already_voted: again"},
		{&Error{Status: 429, Code: CodeRateLimited, RetryAfter: time.Second}, "pollcast: 429 rate_limited (retry after 1s)"},
		{&Error{Status: 502}, "pollcast: 502 Bad Gateway"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
	if !(&Error{Status: http.StatusServiceUnavailable}).Temporary() || (&Error{Status: 409}).Temporary() {
		t.Fatal("Temporary")
	}
}

// TestPumpKeepsNewestState: events pile up while the consumer does not
// read; it then gets the newest results and poll, not a backlog, and
// repeated results are dropped.
func TestPumpKeepsNewestState(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l := &liveStream{in: make(chan Event), out: make(chan Event)}
	go l.pump(ctx)
	results := func(v int64) Event {
		return Event{Type: EventResults, Results: &Results{Version: v, Total: v, Status: StatusOpen}}
	}
	for _, ev := range []Event{results(1), results(2), {Type: EventPoll, Poll: &Poll{Question: "old"}}, results(3),
		{Type: EventPoll, Poll: &Poll{Question: "new"}}, {Type: EventDisconnected, Err: errors.New("gone")}, results(3), results(4)} {
		l.in <- ev
	}
	close(l.in)
	var got []string
	for ev := range l.out {
		s := string(ev.Type)
		switch ev.Type {
		case EventResults:
			s += fmt.Sprint(ev.Results.Version)
		case EventPoll:
			s += ":" + ev.Poll.Question
		}
		got = append(got, s)
	}
	if want := []string{"poll:new", "disconnected", "results4"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
}

func TestDecodeLive(t *testing.T) {
	ev, ok := decodeLive([]byte(`{"type":"results","poll_id":"p","total":3,"voters":2,"options":[{"id":"a","votes":3}],"version":7,"status":"open","updated_at":"2026-11-22T10:00:00Z"}`))
	if !ok || ev.Type != EventResults || ev.Results.Total != 3 || ev.Results.Votes("a") != 3 || ev.Results.Version != 7 {
		t.Fatalf("results: %+v %v", ev, ok)
	}
	ev, ok = decodeLive([]byte(`{"type":"poll","id":"p","question":"Q?","options":[{"id":"a","label":"A"}],"status":"closed"}`))
	if !ok || ev.Poll.Question != "Q?" || ev.Poll.Label("a") != "A" || ev.Poll.Status != StatusClosed {
		t.Fatalf("poll: %+v %v", ev, ok)
	}
	if ev, ok = decodeLive([]byte(`{"type":"hidden"}`)); !ok || ev.Type != EventHidden {
		t.Fatalf("hidden: %+v", ev)
	}
	for _, skip := range []string{`{"type":"vote_result","ref":"1","status":202}`, `{"type":"error","code":"bad_request"}`, `not json`} {
		if _, ok := decodeLive([]byte(skip)); ok {
			t.Errorf("%s delivered", skip)
		}
	}
}
