package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"
)

// Tests of the command-line client (internal/cli) that need a server: run
// through run(), as the binary dispatches them, against a real in-process
// server. Tests of its parsing and rendering alone live in internal/cli.

// cliResult is what one client command did.
type cliResult struct {
	code           int
	stdout, stderr string
}

// env returns a getenv with the given variables only.
func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

// cli runs `pollcast args...` against a with the admin key in the
// environment.
func (a *app) cli(args ...string) cliResult {
	a.t.Helper()
	return a.cliEnv(env("POLLCAST_URL", a.url, "POLLCAST_API_KEY", testAdminKey), args...)
}

func (a *app) cliEnv(getenv func(string) string, args ...string) cliResult {
	a.t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, getenv, &out, &errOut)
	return cliResult{code, out.String(), errOut.String()}
}

// ok runs a command that must succeed.
func (a *app) cliOK(args ...string) string {
	a.t.Helper()
	r := a.cli(args...)
	if r.code != 0 {
		a.t.Fatalf("pollcast %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

func decodeJSONOut(t testing.TB, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, s)
	}
	return m
}

func TestClientPollsAndVotes(t *testing.T) {
	a := startApp(t)
	created := decodeJSONOut(t, a.cliOK("polls", "create", "--question", "Best pizza topping?",
		"--option", "Mushroom", "--option", "Pineapple", "--option", "Olives",
		"--dedupe", "device", "--closes-at", "2h", "--origin", "https://news.example.com", "--json"))
	id, _ := created["id"].(string)
	if id == "" || created["closes_at"] == nil || created["voter_secret"] == "" || len(created["options"].([]any)) != 3 {
		t.Fatalf("created %v", created)
	}

	// Tables for people.
	out := a.cliOK("polls", "get", id)
	for _, want := range []string{"Question      Best pizza topping?", "Status        open", "Origins       https://news.example.com", "a       Mushroom", "c       Olives"} {
		if !strings.Contains(out, want) {
			t.Errorf("polls get: no %q in\n%s", want, out)
		}
	}
	out = a.cliOK("polls", "list")
	if !strings.HasPrefix(out, "ID ") || !strings.Contains(out, id) || !strings.Contains(out, "Best pizza topping?") {
		t.Errorf("polls list:\n%s", out)
	}

	// Votes: flags after the arguments, --key and --url given as flags.
	out = a.cliOK("vote", id, "b", "--voter", "device-1")
	if !strings.Contains(out, "accepted") {
		t.Errorf("vote: %s", out)
	}
	r := a.cliEnv(env(), "vote", "--url", a.url, id, "a", "--voter", "device-1")
	if r.code != 1 || !strings.Contains(r.stderr, "409 already_voted") {
		t.Errorf("second vote: exit %d %q", r.code, r.stderr)
	}
	r = a.cli("vote", id, "zz", "--voter", "device-2", "--json")
	if r.code != 1 || decodeJSONOut(t, r.stderr)["error"].(map[string]any)["code"] != "invalid_option" {
		t.Errorf("bad option with --json: exit %d %q", r.code, r.stderr)
	}
	vote := decodeJSONOut(t, a.cliOK("vote", id, "b", "--voter", "device-3", "--json"))
	if vote["status"] != "accepted" || vote["vote_id"] == "" || vote["attempts"] != 1.0 {
		t.Errorf("vote --json: %v", vote)
	}
	eventually(t, 5*time.Second, "two votes counted", func() bool { return a.total(id) == 2 })

	out = a.cliOK("results", id)
	for _, want := range []string{"Best pizza topping?  [open]", "b       Pineapple  2      100.0%", "2 votes from 2 voters"} {
		if !strings.Contains(out, want) {
			t.Errorf("results: no %q in\n%s", want, out)
		}
	}
	res := decodeJSONOut(t, a.cliOK("results", "--json", id))
	if res["total"] != 2.0 || res["poll_id"] != id {
		t.Errorf("results --json: %v", res)
	}

	// Close, open, delete.
	if p := decodeJSONOut(t, a.cliOK("polls", "close", id, "--json")); p["status"] != "closed" {
		t.Errorf("close: %v", p)
	}
	if r := a.cli("vote", id, "a", "--voter", "device-4"); r.code != 1 || !strings.Contains(r.stderr, "poll_closed") {
		t.Errorf("vote on a closed poll: %d %q", r.code, r.stderr)
	}
	if out := a.cliOK("polls", "open", id); !strings.Contains(out, "Status        open") {
		t.Errorf("open:\n%s", out)
	}
	list := decodeJSONOut(t, a.cliOK("polls", "list", "--status", "open", "--json"))
	if polls := list["polls"].([]any); len(polls) != 1 || list["next_cursor"] != nil {
		t.Errorf("list --json: %v", list)
	}
	if out := a.cliOK("polls", "delete", id); !strings.Contains(out, "deleted poll "+id) {
		t.Errorf("delete: %s", out)
	}
	if r := a.cli("polls", "get", id); r.code != 1 || !strings.Contains(r.stderr, "404 not_found") {
		t.Errorf("get a deleted poll: %d %q", r.code, r.stderr)
	}
}

func TestClientPaging(t *testing.T) {
	a := startApp(t)
	for range 3 {
		a.createPoll(nil)
	}
	r := a.cli("polls", "list", "--limit", "2")
	if r.code != 0 || strings.Count(r.stdout, "\n") != 3 || !strings.Contains(r.stderr, "--cursor ") {
		t.Fatalf("first page: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	cursor := strings.Fields(r.stderr[strings.Index(r.stderr, "--cursor ")+len("--cursor "):])[0]
	if out := a.cliOK("polls", "list", "--limit", "2", "--cursor", cursor); strings.Count(out, "\n") != 2 {
		t.Fatalf("second page:\n%s", out)
	}
	all := decodeJSONOut(t, a.cliOK("polls", "list", "--limit", "1", "--all", "--json"))
	if len(all["polls"].([]any)) != 3 {
		t.Fatalf("--all: %v", all)
	}
}

func TestClientKeys(t *testing.T) {
	a := startApp(t)
	k := decodeJSONOut(t, a.cliOK("keys", "create", "--name", "newsroom", "--json"))
	id, secret := k["id"].(string), k["key"].(string)
	if id == "" || secret == "" || k["role"] != "owner" {
		t.Fatalf("keys create: %v", k)
	}
	r := a.cli("keys", "create", "--name", "ops", "--role", "admin")
	if r.code != 0 || !strings.Contains(r.stdout, "Role     admin") || !strings.Contains(r.stderr, "shown this once") {
		t.Fatalf("keys create table: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	out := a.cliOK("keys", "list")
	if !strings.Contains(out, id) || !strings.Contains(out, "newsroom") || strings.Contains(out, secret) {
		t.Fatalf("keys list:\n%s", out)
	}
	// The new owner key works, and may not manage keys.
	owner := env("POLLCAST_URL", a.url, "POLLCAST_API_KEY", secret)
	if r := a.cliEnv(owner, "polls", "create", "--question", "Mine?", "--option", "x", "--option", "y"); r.code != 0 {
		t.Fatalf("create with the owner key: %d %s", r.code, r.stderr)
	}
	if r := a.cliEnv(owner, "keys", "list"); r.code != 1 || !strings.Contains(r.stderr, "403 forbidden") {
		t.Fatalf("keys list as owner: %d %q", r.code, r.stderr)
	}
	if out := a.cliOK("keys", "delete", id); !strings.Contains(out, "deleted key "+id) {
		t.Fatalf("keys delete: %s", out)
	}
	if r := a.cliEnv(owner, "polls", "list"); r.code != 1 || !strings.Contains(r.stderr, "401 unauthorized") {
		t.Fatalf("revoked key: %d %q", r.code, r.stderr)
	}
	// No key at all: a hint.
	if r := a.cliEnv(env("POLLCAST_URL", a.url), "polls", "list"); r.code != 1 || !strings.Contains(r.stderr, "POLLCAST_API_KEY") {
		t.Fatalf("no key: %d %q", r.code, r.stderr)
	}
}

// TestClientHelp: `pollcast help` lists the client commands and their flags.
func TestClientHelp(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"help"}, env(), &out, &errOut); code != 0 || !strings.Contains(out.String(), "polls create") || !strings.Contains(out.String(), "POLLCAST_URL") {
		t.Fatalf("help: %d %q", code, out.String())
	}
}

// TestClientPrintsPollTextAsText: a question full of terminal escapes and
// tabs is printed with them made harmless.
func TestClientPrintsPollTextAsText(t *testing.T) {
	a := startApp(t)
	id := a.createPoll(map[string]any{"question": "Evil\x1b[2J\x1b]0;pwned\x07 question\twith tab"})["id"].(string)
	for _, args := range [][]string{{"polls", "get", id}, {"polls", "list"}, {"results", id}} {
		out := a.cliOK(args...)
		if strings.ContainsAny(out, "\x1b\x07") || !strings.Contains(out, "Evil�[2J�]0;pwned� question�with tab") {
			t.Errorf("pollcast %v printed control characters:\n%q", args, out)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// watch starts `pollcast watch args...` and returns its output and its
// exit code, which arrives when it ends.
func (a *app) watch(args ...string) (*syncBuffer, <-chan int) {
	a.t.Helper()
	out, errOut := &syncBuffer{}, &syncBuffer{}
	done, finished := make(chan int, 1), make(chan struct{})
	go func() {
		defer close(finished)
		done <- run(append([]string{"watch"}, args...), env("POLLCAST_URL", a.url, "POLLCAST_API_KEY", testAdminKey), out, errOut)
	}()
	a.t.Cleanup(func() {
		select {
		case <-finished:
		case <-time.After(10 * time.Second):
			a.t.Errorf("watch did not end; stderr %s", errOut.String())
		}
	})
	return out, done
}

func TestClientWatch(t *testing.T) {
	a := startApp(t)
	id := a.createPoll(map[string]any{"dedupe": "none"})["id"].(string)
	out, done := a.watch(id)
	eventually(t, 5*time.Second, "first frame", func() bool { return strings.Contains(out.String(), "0 votes from 0 voters") })
	a.cliOK("vote", id, "c")
	eventually(t, 5*time.Second, "a frame with the vote", func() bool {
		return strings.Contains(out.String(), "c       Olives     1      100.0%  ██████████████████████████████")
	})
	a.cliOK("polls", "close", id)
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("watch exit %d", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("watch goes on after the poll closed")
	}
	if s := out.String(); !strings.Contains(s, "[closed]") || !strings.Contains(s, "the poll is closed: final results") {
		t.Fatalf("last frame:\n%s", s)
	}

	// --json: one JSON object a line, the server's messages.
	id2 := a.createPoll(map[string]any{"dedupe": "none"})["id"].(string)
	out, done = a.watch(id2, "--json")
	eventually(t, 5*time.Second, "first line", func() bool { return strings.Contains(out.String(), "\n") })
	a.cliOK("polls", "close", id2)
	if code := <-done; code != 0 {
		t.Fatalf("watch --json exit %d", code)
	}
	var types []string
	for line := range strings.SplitSeq(strings.TrimSpace(out.String()), "\n") {
		types = append(types, decodeJSONOut(t, line)["type"].(string))
	}
	if types[0] != "results" || types[len(types)-1] != "results" || !strings.Contains(strings.Join(types, " "), "poll") {
		t.Fatalf("watch --json message types %v", types)
	}

	// Unknown poll: exit 1 at once.
	if r := a.cli("watch", "no-such-poll-id"); r.code != 1 || !strings.Contains(r.stderr, "not_found") {
		t.Fatalf("watch an unknown poll: %d %q", r.code, r.stderr)
	}
}
