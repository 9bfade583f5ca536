package cli

import (
	"bytes"
	"net"
	"slices"
	"strings"
	"testing"
)

// result is what one client command did.
type result struct {
	code           int
	stdout, stderr string
}

// run runs `pollcast cmd args...` with POLLCAST_URL set to url and no API key.
func run(url, cmd string, args ...string) result {
	var out, errOut bytes.Buffer
	getenv := func(k string) string {
		if k == "POLLCAST_URL" {
			return url
		}
		return ""
	}
	code := Run(cmd, args, getenv, &out, &errOut)
	return result{code, out.String(), errOut.String()}
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

func TestCommands(t *testing.T) {
	if got, want := Commands(), []string{"keys", "polls", "results", "vote", "watch"}; !slices.Equal(got, want) {
		t.Fatalf("Commands() = %q, want %q", got, want)
	}
}

// TestUsageErrors: mistakes on the command line exit with status 2 before
// any request, and say what is wrong.
func TestUsageErrors(t *testing.T) {
	url := "http://" + closedAddr(t)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no subcommand", []string{"polls"}, "which one?"},
		{"unknown subcommand", []string{"polls", "frobnicate"}, "unknown command"},
		{"one option", []string{"polls", "create", "--question", "Q?", "--option", "only"}, "at least two --option"},
		{"bad time", []string{"polls", "create", "--question", "Q?", "--option", "a", "--option", "b", "--closes-at", "soon"}, "RFC 3339"},
		{"vote without option", []string{"vote", "abc"}, "usage: pollcast vote"},
		{"get two ids", []string{"polls", "get", "a", "b"}, "usage: pollcast polls get ID"},
		{"unknown flag", []string{"results", "x", "--colour"}, "flag provided but not defined"},
		{"bad url", []string{"results", "x", "--url", "ftp://x"}, "want http(s)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if r := run(url, tc.args[0], tc.args[1:]...); r.code != 2 || !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want 2 and %q", r.code, r.stderr, tc.want)
			}
		})
	}
	if r := run(url, "vote", "-h"); r.code != 0 || !strings.Contains(r.stderr, "Usage: pollcast vote") {
		t.Fatalf("vote -h: %d %q", r.code, r.stderr)
	}
	// The server is unreachable: exit 1 with the network error.
	if r := run(url, "results", "x"); r.code != 1 || !strings.Contains(r.stderr, "connection refused") {
		t.Fatalf("unreachable server: %d %q", r.code, r.stderr)
	}
}

// TestCleanControlCharacters: server text cannot drive the terminal or
// break a table.
func TestCleanControlCharacters(t *testing.T) {
	if got, want := clean("Evil\x1b[2J\x1b]0;pwned\x07 question\twith tab\n"), "Evil�[2J�]0;pwned� question�with tab�"; got != want {
		t.Fatalf("clean = %q, want %q", got, want)
	}
}
