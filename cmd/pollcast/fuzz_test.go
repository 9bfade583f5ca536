package main

import (
	"encoding/json"
	"net/http"
	"testing"
)

// checkAnswer fails unless r is one of the allowed statuses and, for an
// error, a complete problem document. No input may cause a 5xx.
func checkAnswer(t *testing.T, r reply, allowed ...int) {
	t.Helper()
	ok := false
	for _, s := range allowed {
		ok = ok || r.Status == s
	}
	if !ok {
		t.Fatalf("status %d not in %v: %s", r.Status, allowed, r.Body)
	}
	if r.Status >= 400 && (r.Header.Get("Content-Type") != "application/problem+json" || r.Code() == "") {
		t.Fatalf("error %d without a problem document: %s", r.Status, r.Body)
	}
}

// FuzzVoteRequest throws arbitrary bodies at the vote endpoint of each
// kind of poll: the answer is always a clear status, never a crash or a 5xx.
func FuzzVoteRequest(f *testing.F) {
	for _, s := range []string{
		`{"options":["a"],"voter":"v1"}`, `{"options":["a","b"],"voter":"v2","idempotency_key":"k"}`,
		`{"options":[],"voter":""}`, `{"options":["zz"]}`, `{"options":null}`, `{"voter":{"x":1}}`,
		`{"options":["a"],"voter":"eyJhbGciOiJIUzI1NiJ9.e30.x"}`, `[]`, `null`, `"`, `{"options":["a"]}{}`,
	} {
		f.Add(s, uint8(0))
	}
	a := startApp(f)
	var ids []string
	for _, fields := range []map[string]any{
		{"dedupe": "device"}, {"dedupe": "none", "kind": "multiple", "max_choices": 2},
		{"dedupe": "token"}, {"dedupe": "ip", "allowed_origins": []string{"https://a.example"}},
	} {
		ids = append(ids, a.createPoll(fields)["id"].(string))
	}
	f.Fuzz(func(t *testing.T, body string, which uint8) {
		a.t = t
		id := ids[int(which)%len(ids)]
		r := a.do("POST", "/v1/polls/"+id+"/votes", body)
		checkAnswer(t, r, http.StatusAccepted, 400, 401, 403, 404, 409, 413, 422)
	})
}

// FuzzCreatePoll throws arbitrary bodies at poll creation: either a valid
// poll comes back (and reads back the same) or a clear error.
func FuzzCreatePoll(f *testing.F) {
	for _, s := range []string{
		`{"question":"Q?","options":[{"label":"A"},{"label":"B"}]}`,
		`{"question":"Q","kind":"multiple","max_choices":2,"options":[{"label":"A"},{"label":"B"},{"label":"C"}],"dedupe":"token","results_visibility":"after_vote"}`,
		`{"question":"<img src=x onerror=alert(1)>","options":[{"label":"</script>"},{"label":"\u0000"}]}`,
		`{"question":"Q","options":[{"label":"A"},{"label":"B"}],"opens_at":"2030-01-01T00:00:00Z","closes_at":"2029-01-01T00:00:00Z"}`,
		`{"question":"Q","options":[{"label":"A"},{"label":"B"}],"allowed_origins":["https://x.example","nope"]}`,
		`{}`, `{"question":1}`,
	} {
		f.Add(s)
	}
	a := startApp(f)
	f.Fuzz(func(t *testing.T, body string) {
		a.t = t
		r := a.admin("POST", "/v1/polls", body)
		checkAnswer(t, r, http.StatusCreated, 400, 413, 422)
		if r.Status != http.StatusCreated {
			return
		}
		var created map[string]any
		if err := json.Unmarshal(r.Body, &created); err != nil {
			t.Fatal(err)
		}
		got := a.admin("GET", "/v1/polls/"+created["id"].(string), nil)
		if got.Status != 200 || string(got.Body) != string(r.Body) {
			t.Fatalf("read back differs:\n%s\n%s", got.Body, r.Body)
		}
	})
}
