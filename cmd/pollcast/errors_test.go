package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
)

func voterToken(t testing.TB, secret, sub string, exp time.Time) string {
	t.Helper()
	claims := jwt.RegisteredClaims{Subject: sub}
	if !exp.IsZero() {
		claims.ExpiresAt = jwt.NewNumericDate(exp)
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestBadInputGetsClearErrors sends every kind of bad input of API.md and
// checks the status and code of the answer.
func TestBadInputGetsClearErrors(t *testing.T) {
	a := startApp(t)
	open := a.createPoll(nil)["id"].(string)
	multi := a.createPoll(map[string]any{"kind": "multiple", "max_choices": 2})["id"].(string)
	closed := a.createPoll(nil)["id"].(string)
	if r := a.admin("POST", "/v1/polls/"+closed+"/close", nil); r.Status != 200 || r.JSON()["status"] != "closed" {
		t.Fatalf("close: %d %s", r.Status, r.Body)
	}
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	scheduled := a.createPoll(map[string]any{"opens_at": future})["id"].(string)
	tokenPoll := a.createPoll(map[string]any{"dedupe": "token"})
	secret := tokenPoll["voter_secret"].(string)
	token := tokenPoll["id"].(string)
	origins := a.createPoll(map[string]any{"allowed_origins": []string{"https://news.example.com"}})["id"].(string)
	ownerOnly := a.createPoll(map[string]any{"results_visibility": "owner"})["id"].(string)
	afterClose := a.createPoll(map[string]any{"results_visibility": "after_close"})["id"].(string)

	ownerKey := a.admin("POST", "/v1/keys", map[string]any{"name": "other", "role": "owner"}).JSON()["key"].(string)

	big := `{"options":["a"],"voter":"` + strings.Repeat("x", 70<<10) + `"}`
	bigBatch := `{"votes":[` + strings.Repeat(`{"poll_id":"x","options":["a"],"voter":"`+strings.Repeat("y", 1000)+`"},`, 1100) + `{}]}`
	var tooMany strings.Builder
	tooMany.WriteString(`{"votes":[`)
	for i := range 1001 {
		if i > 0 {
			tooMany.WriteString(",")
		}
		tooMany.WriteString(`{"poll_id":"` + open + `","options":["a"],"voter":"b` + strconv.Itoa(i) + `"}`)
	}
	tooMany.WriteString(`]}`)

	type req struct {
		name       string
		method     string
		path       string
		body       any
		headers    []string
		wantStatus int
		wantCode   string
		wantDetail string
	}
	vote := func(id string) string { return "/v1/polls/" + id + "/votes" }
	bearer := func(k string) []string { return []string{"Authorization", "Bearer " + k} }
	admin := bearer(testAdminKey)
	tests := []req{
		{"malformed JSON", "POST", vote(open), `{"options":`, nil, 400, "bad_request", ""},
		{"not an object", "POST", vote(open), `[1,2]`, nil, 400, "bad_request", ""},
		{"empty body", "POST", vote(open), ``, nil, 400, "bad_request", ""},
		{"trailing data", "POST", vote(open), `{"options":["a"],"voter":"v"} {}`, nil, 400, "bad_request", ""},
		{"unknown field", "POST", vote(open), `{"options":["a"],"voter":"v","extra":1}`, nil, 400, "bad_request", ""},
		{"wrong type", "POST", vote(open), `{"options":"a","voter":"v"}`, nil, 400, "bad_request", "options"},
		{"oversized vote", "POST", vote(open), big, nil, 413, "body_too_large", ""},
		{"oversized batch", "POST", "/v1/votes/batch", bigBatch, admin, 413, "body_too_large", ""},
		{"unknown poll vote", "POST", vote("nopenopenope"), `{"options":["a"],"voter":"v"}`, nil, 404, "not_found", ""},
		{"unknown poll get", "GET", "/v1/polls/nopenopenope", nil, nil, 404, "not_found", ""},
		{"unknown poll results", "GET", "/v1/polls/nopenopenope/results", nil, nil, 404, "not_found", ""},
		{"unknown route", "GET", "/v1/nothing", nil, nil, 404, "not_found", ""},
		{"unknown option", "POST", vote(open), `{"options":["zz"],"voter":"v1"}`, nil, 422, "invalid_option", ""},
		{"no option", "POST", vote(open), `{"options":[],"voter":"v1"}`, nil, 422, "invalid_option", ""},
		{"two options on single", "POST", vote(open), `{"options":["a","b"],"voter":"v1"}`, nil, 422, "invalid_option", ""},
		{"duplicate options", "POST", vote(multi), `{"options":["a","a"],"voter":"v1"}`, nil, 422, "invalid_option", ""},
		{"too many options", "POST", vote(multi), `{"options":["a","b","c"],"voter":"v1"}`, nil, 422, "invalid_option", ""},
		{"device poll without voter", "POST", vote(open), `{"options":["a"]}`, nil, 422, "invalid", "voter"},
		{"closed poll", "POST", vote(closed), `{"options":["a"],"voter":"v1"}`, nil, 409, "poll_closed", ""},
		{"not yet open", "POST", vote(scheduled), `{"options":["a"],"voter":"v1"}`, nil, 409, "poll_closed", ""},
		{"missing voter token", "POST", vote(token), `{"options":["a"]}`, nil, 401, "invalid_voter_token", ""},
		{"garbage voter token", "POST", vote(token), `{"options":["a"],"voter":"not.a.jwt"}`, nil, 401, "invalid_voter_token", ""},
		{"forged voter token", "POST", vote(token), map[string]any{"options": []string{"a"}, "voter": voterToken(t, "wrong-secret", "alice", time.Now().Add(time.Hour))}, nil, 401, "invalid_voter_token", ""},
		{"expired voter token", "POST", vote(token), map[string]any{"options": []string{"a"}, "voter": voterToken(t, secret, "alice", time.Now().Add(-time.Minute))}, nil, 401, "invalid_voter_token", "expired"},
		{"token without subject", "POST", vote(token), map[string]any{"options": []string{"a"}, "voter": voterToken(t, secret, "", time.Now().Add(time.Hour))}, nil, 401, "invalid_voter_token", "sub"},
		{"voter token without exp", "POST", vote(token), map[string]any{"options": []string{"a"}, "voter": voterToken(t, secret, "alice", time.Time{})}, nil, 401, "invalid_voter_token", "no expiry (exp)"},
		{"voter token exp too far ahead", "POST", vote(token), map[string]any{"options": []string{"a"}, "voter": voterToken(t, secret, "alice", time.Now().Add(48*time.Hour))}, nil, 401, "invalid_voter_token", "at most 24h ahead"},
		{"alg none token", "POST", vote(token), map[string]any{"options": []string{"a"}, "voter": "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhbGljZSJ9."}, nil, 401, "invalid_voter_token", ""},
		{"origin not allowed", "POST", vote(origins), `{"options":["a"],"voter":"v1"}`, []string{"Origin", "https://evil.example"}, 403, "origin_not_allowed", ""},
		{"origin not allowed preflight", "OPTIONS", vote(origins), nil, []string{"Origin", "https://evil.example", "Access-Control-Request-Method", "POST"}, 403, "origin_not_allowed", ""},
		{"origin not allowed results", "GET", "/v1/polls/" + origins + "/results", nil, []string{"Origin", "https://evil.example"}, 403, "origin_not_allowed", ""},
		{"origin not allowed live", "GET", "/v1/polls/" + origins + "/live", nil, []string{"Origin", "https://evil.example"}, 403, "origin_not_allowed", ""},
		{"unknown poll from a widget", "GET", "/v1/polls/nosuchpoll", nil, []string{"Origin", "https://news.example.com"}, 404, "not_found", ""},
		{"vote in unknown poll from a widget", "POST", vote("nosuchpoll"), `{"options":["a"],"voter":"v1"}`, []string{"Origin", "https://news.example.com"}, 404, "not_found", ""},
		{"create without key", "POST", "/v1/polls", `{"question":"Q","options":[{"label":"A"},{"label":"B"}]}`, nil, 401, "unauthorized", ""},
		{"create with wrong key", "POST", "/v1/polls", `{"question":"Q","options":[{"label":"A"},{"label":"B"}]}`, bearer("wrong"), 401, "unauthorized", ""},
		{"create with bad scheme", "POST", "/v1/polls", `{"question":"Q","options":[{"label":"A"},{"label":"B"}]}`, []string{"Authorization", "Basic " + testAdminKey}, 401, "unauthorized", ""},
		{"list without key", "GET", "/v1/polls", nil, nil, 401, "unauthorized", ""},
		{"public get with wrong key", "GET", "/v1/polls/" + open, nil, bearer("wrong"), 401, "unauthorized", ""},
		{"close without key", "POST", "/v1/polls/" + open + "/close", nil, nil, 401, "unauthorized", ""},
		{"batch without key", "POST", "/v1/votes/batch", `{"votes":[]}`, nil, 401, "unauthorized", ""},
		{"other owner closes", "POST", "/v1/polls/" + open + "/close", nil, bearer(ownerKey), 403, "forbidden", ""},
		{"other owner patches", "PATCH", "/v1/polls/" + open, `{"question":"Mine now"}`, bearer(ownerKey), 403, "forbidden", ""},
		{"other owner deletes", "DELETE", "/v1/polls/" + open, nil, bearer(ownerKey), 403, "forbidden", ""},
		{"owner creates keys", "POST", "/v1/keys", `{"name":"x"}`, bearer(ownerKey), 403, "forbidden", ""},
		{"invalid poll", "POST", "/v1/polls", `{"question":"","options":[{"label":"A"},{"label":"B"}]}`, admin, 422, "invalid", "question"},
		{"invalid options", "POST", "/v1/polls", `{"question":"Q","options":[{"label":"A"}]}`, admin, 422, "invalid", "options"},
		{"invalid label", "POST", "/v1/polls", `{"question":"Q","options":[{"label":"A"},{"label":""}]}`, admin, 422, "invalid", "options[1].label"},
		{"invalid dedupe", "POST", "/v1/polls", `{"question":"Q","dedupe":"cookie","options":[{"label":"A"},{"label":"B"}]}`, admin, 422, "invalid", "dedupe"},
		{"invalid time", "POST", "/v1/polls", `{"question":"Q","closes_at":"tomorrow","options":[{"label":"A"},{"label":"B"}]}`, admin, 400, "bad_request", ""},
		{"unknown poll field", "POST", "/v1/polls", `{"question":"Q","colour":"red","options":[{"label":"A"},{"label":"B"}]}`, admin, 400, "bad_request", ""},
		{"bad list limit", "GET", "/v1/polls?limit=500", nil, admin, 422, "invalid", "limit"},
		{"bad list status", "GET", "/v1/polls?status=gone", nil, admin, 422, "invalid", "status"},
		{"bad cursor", "GET", "/v1/polls?cursor=!!!", nil, admin, 422, "invalid", "cursor"},
		{"owner only results", "GET", "/v1/polls/" + ownerOnly + "/results", nil, nil, 403, "results_hidden", ""},
		{"after close results", "GET", "/v1/polls/" + afterClose + "/results", nil, nil, 403, "results_hidden", ""},
		{"batch too many", "POST", "/v1/votes/batch", tooMany.String(), admin, 422, "invalid", "votes"},
		{"batch empty", "POST", "/v1/votes/batch", `{"votes":[]}`, admin, 422, "invalid", "votes"},
		{"wrong method", "PUT", "/v1/polls/" + open, `{}`, admin, 405, "method_not_allowed", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a.t = t
			r := a.do(tt.method, tt.path, tt.body, tt.headers...)
			if r.Status != tt.wantStatus || r.Code() != tt.wantCode {
				t.Fatalf("got %d %q, want %d %q; body %s", r.Status, r.Code(), tt.wantStatus, tt.wantCode, r.Body)
			}
			if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("Content-Type %q", ct)
			}
			// A widget on another site can read why it was refused (a
			// WebSocket handshake is not subject to CORS).
			if len(tt.headers) >= 2 && tt.headers[0] == "Origin" && !strings.HasSuffix(tt.path, "/live") && r.Header.Get("Access-Control-Allow-Origin") != tt.headers[1] {
				t.Fatalf("Access-Control-Allow-Origin %q on an answer to %s", r.Header.Get("Access-Control-Allow-Origin"), tt.headers[1])
			}
			if len(tt.headers) >= 2 && tt.headers[0] == "Origin" && !strings.HasSuffix(tt.path, "/live") && r.Header.Get("Access-Control-Expose-Headers") != "Retry-After" {
				t.Fatalf("Retry-After is not readable by the widget: %q", r.Header.Get("Access-Control-Expose-Headers"))
			}
			p := r.JSON()
			if p["status"] != float64(tt.wantStatus) || p["type"] == "" || p["title"] == "" {
				t.Fatalf("incomplete problem document %s", r.Body)
			}
			if detail, _ := p["detail"].(string); !strings.Contains(detail, tt.wantDetail) {
				t.Fatalf("detail %q does not mention %q", detail, tt.wantDetail)
			}
		})
	}
	a.t = t
	// Nothing above was counted.
	for _, id := range []string{open, multi, closed, scheduled, token, origins} {
		if n := a.total(id); n != 0 {
			t.Fatalf("poll %s counted %d votes from bad requests", id, n)
		}
	}
}

// TestOwnPagesUseRestrictedPolls: allowed_origins limits other sites, not
// the hosted poll page and the dashboard, which are served by pollcast.
func TestOwnPagesUseRestrictedPolls(t *testing.T) {
	a := startApp(t)
	id := a.createPoll(map[string]any{"allowed_origins": []string{"https://news.example.com"}})["id"].(string)
	own := []string{"Origin", a.url}
	if r := a.do("OPTIONS", "/v1/polls/"+id+"/votes", nil, own[0], own[1], "Access-Control-Request-Method", "POST"); r.Status != 204 {
		t.Fatalf("preflight from our own page: %d %s", r.Status, r.Body)
	}
	if r := a.do("POST", "/v1/polls/"+id+"/votes", map[string]any{"options": []string{"a"}, "voter": "d1"}, own...); r.Status != 202 {
		t.Fatalf("vote from our own page: %d %s", r.Status, r.Body)
	}
	if r := a.do("GET", "/v1/polls/"+id+"/results", nil, own...); r.Status != 200 {
		t.Fatalf("results from our own page: %d %s", r.Status, r.Body)
	}
	if r := a.do("POST", "/v1/polls/"+id+"/votes", map[string]any{"options": []string{"a"}, "voter": "d2"}, "Origin", "http://elsewhere.example"); r.Status != 403 {
		t.Fatalf("vote from another site: %d %s", r.Status, r.Body)
	}
	eventually(t, 10*time.Second, "the one vote counted", func() bool { return a.total(id) == 1 })
}

// TestPublicURLDecidesOwnPages: with --public-url, only a page from that
// address is pollcast's own; a page claiming the Host we were reached at
// (as DNS rebinding does) is another site. The hosted page links to it.
func TestPublicURLDecidesOwnPages(t *testing.T) {
	const public = "https://polls.example.com"
	a := startApp(t, func(c *Config) { c.PublicURL = public })
	id := a.createPoll(map[string]any{"allowed_origins": []string{"https://news.example.com"}})["id"].(string)
	if r := a.do("POST", "/v1/polls/"+id+"/votes", map[string]any{"options": []string{"a"}, "voter": "d1"}, "Origin", public); r.Status != 202 {
		t.Fatalf("vote from the public address: %d %s", r.Status, r.Body)
	}
	if r := a.do("POST", "/v1/polls/"+id+"/votes", map[string]any{"options": []string{"a"}, "voter": "d2"}, "Origin", a.url); r.Status != 403 {
		t.Fatalf("vote from a page claiming our Host: %d %s", r.Status, r.Body)
	}
	if r := a.do("GET", "/p/"+id, nil); r.Status != 200 || !strings.Contains(string(r.Body), public+"/p/"+id) {
		t.Fatalf("hosted page does not link to the public address: %d", r.Status)
	}
}

// TestSecondVoteUnderEachDedupePolicy: one vote per device, IP or verified
// voter; every vote counts on a "none" poll.
func TestSecondVoteUnderEachDedupePolicy(t *testing.T) {
	a := startApp(t)
	for _, policy := range []string{"none", "device", "ip", "token"} {
		t.Run(policy, func(t *testing.T) {
			a.t = t
			p := a.createPoll(map[string]any{"dedupe": policy})
			id := p["id"].(string)
			body := map[string]any{"options": []string{"a"}, "voter": "device-1"}
			other := map[string]any{"options": []string{"b"}, "voter": "device-2"}
			if policy == "token" {
				body["voter"] = voterToken(t, p["voter_secret"].(string), "alice", time.Now().Add(time.Hour))
				other["voter"] = voterToken(t, p["voter_secret"].(string), "bob", time.Now().Add(time.Hour))
			}
			first := a.do("POST", "/v1/polls/"+id+"/votes", body)
			if first.Status != 202 || first.JSON()["status"] != "accepted" || first.JSON()["vote_id"] == "" {
				t.Fatalf("first vote: %d %s", first.Status, first.Body)
			}
			second := a.do("POST", "/v1/polls/"+id+"/votes", body)
			third := a.do("POST", "/v1/polls/"+id+"/votes", other)
			want := 2
			switch policy {
			case "none":
				want = 3
				if second.Status != 202 || third.Status != 202 {
					t.Fatalf("none: %d %d", second.Status, third.Status)
				}
			case "ip": // same address for everyone
				want = 1
				if second.Code() != "already_voted" || third.Code() != "already_voted" {
					t.Fatalf("ip: %d %s / %d %s", second.Status, second.Body, third.Status, third.Body)
				}
			default:
				if second.Status != 409 || second.Code() != "already_voted" || third.Status != 202 {
					t.Fatalf("%s: %d %s / %d %s", policy, second.Status, second.Body, third.Status, third.Body)
				}
			}
			eventually(t, 2*time.Second, "counts", func() bool { return a.total(id) == int64(want) })
		})
	}
}

func TestIdempotencyKeyRetriesAreCountedOnce(t *testing.T) {
	a := startApp(t)
	for _, policy := range []string{"none", "device"} {
		t.Run(policy, func(t *testing.T) {
			a.t = t
			id := a.createPoll(map[string]any{"dedupe": policy})["id"].(string)
			body := map[string]any{"options": []string{"b"}, "voter": "d1", "idempotency_key": "key-1"}
			var voteID any
			for i := range 5 {
				r := a.do("POST", "/v1/polls/"+id+"/votes", body)
				if r.Status != 202 {
					t.Fatalf("try %d: %d %s", i, r.Status, r.Body)
				}
				if i > 0 && r.JSON()["vote_id"] != voteID {
					t.Fatalf("retry %d got vote_id %v, want %v", i, r.JSON()["vote_id"], voteID)
				}
				voteID = r.JSON()["vote_id"]
			}
			// The Idempotency-Key header works too, for a new vote.
			r := a.do("POST", "/v1/polls/"+id+"/votes", map[string]any{"options": []string{"a"}, "voter": "d2"}, "Idempotency-Key", "key-2")
			if r.Status != 202 || r.JSON()["vote_id"] == voteID {
				t.Fatalf("header key: %d %s", r.Status, r.Body)
			}
			eventually(t, 2*time.Second, "two votes counted", func() bool { return a.total(id) == 2 })
		})
	}
}

// TestIdempotencyKeyHeaderIsNotTheBatchsKey: the Idempotency-Key header
// stands for one vote's key; on a batch (or a socket's upgrade request) it
// would make every keyless vote one vote.
func TestIdempotencyKeyHeaderIsNotTheBatchsKey(t *testing.T) {
	a := startApp(t)
	id := a.createPoll(map[string]any{"dedupe": "none"})["id"].(string)
	votes := []map[string]any{}
	for range 3 {
		votes = append(votes, map[string]any{"poll_id": id, "options": []string{"a"}})
	}
	r := a.admin("POST", "/v1/votes/batch", map[string]any{"votes": votes}, "Idempotency-Key", "one-key")
	if r.Status != http.StatusOK {
		t.Fatalf("batch: %d %s", r.Status, r.Body)
	}
	var out struct {
		Results []struct {
			Status int    `json:"status"`
			VoteID string `json:"vote_id"`
		} `json:"results"`
	}
	if err := json.Unmarshal(r.Body, &out); err != nil || len(out.Results) != 3 {
		t.Fatalf("batch answer %s: %v", r.Body, err)
	}
	ids := map[string]bool{}
	for _, res := range out.Results {
		if res.Status != http.StatusAccepted {
			t.Fatalf("batch answer %s", r.Body)
		}
		ids[res.VoteID] = true
	}
	if len(ids) != 3 {
		t.Fatalf("three keyless votes got %d vote IDs: %s", len(ids), r.Body)
	}
	eventually(t, 2*time.Second, "three votes counted", func() bool { return a.total(id) == 3 })
}

// TestAfterVoteKnowsEveryVoter: the voter registry keeps no voters of a
// poll that counts every vote and shows results to all. If the poll comes
// to show results only after a vote, its earlier voters still see them
// (the tally's voter set answers), and others still do not.
func TestAfterVoteKnowsEveryVoter(t *testing.T) {
	a := startApp(t)
	id := a.createPoll(map[string]any{"dedupe": "none", "results_visibility": "always"})["id"].(string)
	if r := a.do("POST", "/v1/polls/"+id+"/votes", map[string]any{"options": []string{"a"}, "voter": "early"}); r.Status != 202 {
		t.Fatalf("vote: %d %s", r.Status, r.Body)
	}
	eventually(t, 5*time.Second, "the vote counted", func() bool { return a.total(id) == 1 })
	if r := a.admin("PATCH", "/v1/polls/"+id, map[string]any{"results_visibility": "after_vote"}); r.Status != 200 {
		t.Fatalf("patch: %d %s", r.Status, r.Body)
	}
	resultsFor := func(voter string) int {
		return a.do("GET", "/v1/polls/"+id+"/results?voter="+voter, nil).Status
	}
	eventually(t, 5*time.Second, "the poll showing results after a vote", func() bool { return resultsFor("nobody") == http.StatusForbidden })
	if got := resultsFor("early"); got != http.StatusOK {
		t.Fatalf("results for a voter from before the change: %d, want 200", got)
	}
	if r := a.do("POST", "/v1/polls/"+id+"/votes", map[string]any{"options": []string{"b"}, "voter": "late"}); r.Status != 202 {
		t.Fatalf("vote: %d %s", r.Status, r.Body)
	}
	if got := resultsFor("late"); got != http.StatusOK { // at once: the registry keeps this poll's voters now
		t.Fatalf("results for a voter right after the vote: %d, want 200", got)
	}
	if got := resultsFor("nobody"); got != http.StatusForbidden {
		t.Fatalf("results for someone who did not vote: %d, want 403", got)
	}
}

func TestRateLimitAnswers429WithRetryAfter(t *testing.T) {
	a := startApp(t, func(c *Config) { c.VoteRate = 1 }) // burst of 4
	id := a.createPoll(map[string]any{"dedupe": "none"})["id"].(string)
	var limited reply
	accepted := 0
	for range 10 {
		r := a.do("POST", "/v1/polls/"+id+"/votes", map[string]any{"options": []string{"a"}})
		if r.Status == 202 {
			accepted++
			continue
		}
		limited = r
		break
	}
	if limited.Status != http.StatusTooManyRequests || limited.Code() != "rate_limited" {
		t.Fatalf("after %d accepted: %d %s", accepted, limited.Status, limited.Body)
	}
	if accepted < 4 {
		t.Fatalf("burst allowed only %d votes, want 4", accepted)
	}
	if ra, err := strconv.Atoi(limited.Header.Get("Retry-After")); err != nil || ra < 1 {
		t.Fatalf("Retry-After %q", limited.Header.Get("Retry-After"))
	}
}

func TestOptionsCannotBeRemovedOnceVotesExist(t *testing.T) {
	a := startApp(t)
	id := a.createPoll(nil)["id"].(string)
	if r := a.do("POST", "/v1/polls/"+id+"/votes", map[string]any{"options": []string{"c"}, "voter": "v"}); r.Status != 202 {
		t.Fatalf("vote: %d %s", r.Status, r.Body)
	}
	eventually(t, 2*time.Second, "vote counted", func() bool { return a.total(id) == 1 })
	r := a.admin("PATCH", "/v1/polls/"+id, `{"options":[{"id":"a","label":"Mushroom"},{"id":"b","label":"Pineapple"}]}`)
	if r.Status != 409 || r.Code() != "has_votes" {
		t.Fatalf("remove option: %d %s", r.Status, r.Body)
	}
	r = a.admin("PATCH", "/v1/polls/"+id, `{"question":"Best topping?","options":[{"id":"a","label":"Mushrooms"},{"id":"b","label":"Pineapple"},{"id":"c","label":"Olives"}]}`)
	if r.Status != 200 || r.JSON()["question"] != "Best topping?" {
		t.Fatalf("relabel: %d %s", r.Status, r.Body)
	}
}

func TestWebSocketOriginAndGarbageFrames(t *testing.T) {
	a := startApp(t)
	id := a.createPoll(map[string]any{"allowed_origins": []string{"https://news.example.com"}})["id"].(string)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	wsURL := "ws" + strings.TrimPrefix(a.url, "http") + "/v1/polls/" + id + "/live"

	_, resp, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"https://evil.example"}}})
	if err == nil || resp == nil || resp.StatusCode != 403 {
		t.Fatalf("disallowed origin: err=%v resp=%v", err, resp)
	}

	c, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"https://news.example.com"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	first := readWS(ctx, t, c)
	if first["type"] != "results" {
		t.Fatalf("first message %v", first)
	}
	for _, garbage := range []string{"not json", `{"type":"vote","options":"a"}`, `{"type":"dance"}`, `[]`} {
		if err := c.Write(ctx, websocket.MessageText, []byte(garbage)); err != nil {
			t.Fatal(err)
		}
		if m := readUntil(ctx, t, c, "error"); m["code"] != "bad_request" {
			t.Fatalf("garbage %q answered %v", garbage, m)
		}
	}
	// The socket is still up: a vote on it works.
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"type":"vote","ref":"7","options":["b"],"voter":"ws-voter"}`)); err != nil {
		t.Fatal(err)
	}
	if m := readUntil(ctx, t, c, "vote_result"); m["ref"] != "7" || m["status"] != float64(202) || m["vote_id"] == "" {
		t.Fatalf("vote over socket: %v", m)
	}
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"type":"vote","ref":"8","options":["a"],"voter":"ws-voter"}`)); err != nil {
		t.Fatal(err)
	}
	if m := readUntil(ctx, t, c, "vote_result"); m["ref"] != "8" || m["status"] != float64(409) || m["code"] != "already_voted" {
		t.Fatalf("second vote over socket: %v", m)
	}
}
