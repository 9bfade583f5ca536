package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/pollcast/pollcast/internal/cmdline"
	"github.com/pollcast/pollcast/sdk"
)

// Help is the client part of `pollcast help`.
const Help = `Client commands (talk to a running server):
  polls create --question Q --option A --option B [flags]   create a poll
  polls list [--status S] [--limit N] [--cursor C] [--all]  list polls, newest first
  polls get|open|close|delete ID                            show, open, close or delete a poll
  polls delete ID --purge                                   erase a poll: votes, counts, voters, analytics
  results ID [--voter V]                                    show a poll's results
  watch ID [--voter V]                                      follow results live until the poll closes
  vote ID OPTION... [--voter V] [--idempotency-key K]       cast a vote (option ids: a, b, ...)
  keys create --name N [--role owner|admin]                 create an API key (admin)
  keys list | keys delete ID                                list or revoke API keys (admin)

Client flags (anywhere after the command):
  --url URL    server address (env POLLCAST_URL, default http://127.0.0.1:8080)
  --key KEY    API key (env POLLCAST_API_KEY)
  --json       print JSON for scripts instead of tables
`

// commands maps each command's full name to its implementation.
var commands = map[string]func(context.Context, *command, []string) error{
	"polls create": pollsCreate,
	"polls list":   pollsList,
	"polls get":    pollsGet,
	"polls open":   pollsGet,
	"polls close":  pollsGet,
	"polls delete": pollsDelete,
	"results":      resultsCmd,
	"watch":        watchCmd,
	"vote":         voteCmd,
	"keys create":  keysCreate,
	"keys list":    keysList,
	"keys delete":  keysDelete,
}

// groups are the commands that take a subcommand, with the choices as the
// "which one?" answer lists them.
var groups = map[string]string{
	"polls": "create, list, get, open, close or delete",
	"keys":  "create, list or delete",
}

// Commands returns the first words of the client commands, sorted: the
// names the binary hands to Run.
func Commands() []string {
	var names []string
	for name := range commands {
		first, _, _ := strings.Cut(name, " ")
		if !slices.Contains(names, first) {
			names = append(names, first)
		}
	}
	slices.Sort(names)
	return names
}

// Run runs the client command cmd ("polls", "results", ...) with the rest
// of the command line in args, and returns the exit status. getenv supplies
// POLLCAST_URL and POLLCAST_API_KEY. An interrupt or SIGTERM cancels the
// command's requests.
func Run(cmd string, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	name := cmd
	if which, ok := groups[cmd]; ok {
		if len(args) == 0 || strings.HasPrefix(args[0], "-") {
			fmt.Fprintf(stderr, "pollcast %s: which one? %s\n", cmd, which)
			return 2
		}
		name, args = cmd+" "+args[0], args[1:]
	}
	c := &command{name: name, stdout: stdout, stderr: stderr, fs: flag.NewFlagSet("pollcast "+name, flag.ContinueOnError)}
	c.fs.SetOutput(stderr)
	c.url = c.fs.String("url", cmp.Or(getenv("POLLCAST_URL"), "http://127.0.0.1:8080"), "server address (env POLLCAST_URL)")
	c.key = c.fs.String("key", getenv("POLLCAST_API_KEY"), "API key (env POLLCAST_API_KEY)")
	c.json = c.fs.Bool("json", false, "print JSON instead of tables")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	run, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "pollcast: unknown command %q (try 'pollcast help')\n", name)
		return 2
	}
	err := run(ctx, c, args)
	var ue cmdline.UsageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		if ue.Msg != "" {
			fmt.Fprintf(stderr, "pollcast %s: %s\n", name, ue.Msg)
		}
		return 2
	}
	c.printError(err)
	return 1
}

// command is one client command being run. Each implementation declares
// its own flags on fs, then calls parse, which makes client.
type command struct {
	name           string // "polls create"
	stdout, stderr io.Writer
	fs             *flag.FlagSet
	url, key       *string
	json           *bool
	client         *sdk.Client
}

// parse parses the flags, which may come before, between or after the
// positional arguments, checks the number of positional arguments
// (maxArgs < 0: no limit) and makes the client.
func (c *command) parse(args []string, usage string, minArgs, maxArgs int) ([]string, error) {
	c.fs.Usage = func() {
		fmt.Fprintf(c.stderr, "Usage: pollcast %s %s\n\nFlags:\n", c.name, usage)
		c.fs.PrintDefaults()
	}
	pos, err := cmdline.Parse(c.fs, args)
	if err != nil {
		return nil, err
	}
	if len(pos) < minArgs || maxArgs >= 0 && len(pos) > maxArgs {
		return nil, cmdline.UsageError{Msg: "usage: pollcast " + c.name + " " + usage}
	}
	client, err := sdk.New(*c.url, sdk.Config{APIKey: *c.key, UserAgent: "pollcast-cli"})
	if err != nil {
		return nil, cmdline.UsageError{Msg: err.Error()}
	}
	c.client = client
	return pos, nil
}

// printError reports a failed command on stderr: the problem document as
// JSON with --json, a sentence otherwise.
func (c *command) printError(err error) {
	var e *sdk.Error
	isAPI := errors.As(err, &e)
	if *c.json && isAPI {
		_ = json.NewEncoder(c.stderr).Encode(map[string]any{"error": map[string]any{
			"status": e.Status, "code": e.Code, "detail": e.Detail}})
		return
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "pollcast") {
		msg = "pollcast: " + msg
	}
	fmt.Fprintln(c.stderr, clean(msg))
	if isAPI && e.Code == sdk.CodeUnauthorized && *c.key == "" {
		fmt.Fprintln(c.stderr, "hint: pass an API key with --key or POLLCAST_API_KEY")
	}
}

// printJSON writes v as indented JSON.
func (c *command) printJSON(v any) error {
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table returns a writer that aligns tab-separated columns; call Flush.
func (c *command) table() *tabwriter.Writer {
	return tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
}

// clean makes server-provided text safe to print on a terminal: control
// characters (escape sequences, tabs, newlines) become visible marks, so a
// poll's text can neither break a table nor drive the terminal.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '�'
		}
		return r
	}, s)
}

// fmtTime prints a time in UTC to the second, or "-" for none.
func fmtTime(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// deleteOne runs a `delete ID` command: del removes the thing of that kind
// with the client that parse makes.
func (c *command) deleteOne(ctx context.Context, args []string, kind string, del func(*sdk.Client, context.Context, string) error) error {
	pos, err := c.parse(args, "ID", 1, 1)
	if err != nil {
		return err
	}
	return c.deleted(kind, pos[0], del(c.client, ctx, pos[0]))
}

// deleted reports the deletion of the thing of that kind with that id, or
// returns err when it failed.
func (c *command) deleted(kind, id string, err error) error {
	if err != nil {
		return err
	}
	if *c.json {
		return c.printJSON(map[string]any{"id": id, "deleted": true})
	}
	fmt.Fprintf(c.stdout, "deleted %s %s\n", kind, id)
	return nil
}
