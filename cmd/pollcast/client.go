package main

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
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/pollcast/pollcast/sdk"
)

// The command-line client: `pollcast polls|results|watch|vote|keys ...`,
// a thin layer over package sdk. Output is aligned tables for people, or
// JSON (the API's own shapes) with --json for scripts.

const clientHelp = `Client commands (talk to a running server):
  polls create --question Q --option A --option B [flags]   create a poll
  polls list [--status S] [--limit N] [--cursor C] [--all]  list polls, newest first
  polls get|open|close|delete ID                            show, open, close or delete a poll
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

// cli is one client command being run.
type cli struct {
	name           string // "polls create"
	stdout, stderr io.Writer
	fs             *flag.FlagSet
	url, key       *string
	json           *bool
	client         *sdk.Client
}

// runClient runs the client command cmd ("polls", "results", ...).
func runClient(cmd string, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	name := cmd
	if cmd == "polls" || cmd == "keys" {
		if len(args) == 0 || strings.HasPrefix(args[0], "-") {
			fmt.Fprintf(stderr, "pollcast %s: which one? %s\n", cmd, map[string]string{
				"polls": "create, list, get, open, close or delete", "keys": "create, list or delete"}[cmd])
			return 2
		}
		name, args = cmd+" "+args[0], args[1:]
	}
	c := &cli{name: name, stdout: stdout, stderr: stderr, fs: flag.NewFlagSet("pollcast "+name, flag.ContinueOnError)}
	c.fs.SetOutput(stderr)
	c.url = c.fs.String("url", cmp.Or(getenv("POLLCAST_URL"), "http://127.0.0.1:8080"), "server address (env POLLCAST_URL)")
	c.key = c.fs.String("key", getenv("POLLCAST_API_KEY"), "API key (env POLLCAST_API_KEY)")
	c.json = c.fs.Bool("json", false, "print JSON instead of tables")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	run, ok := clientCommands[name]
	if !ok {
		fmt.Fprintf(stderr, "pollcast: unknown command %q (try 'pollcast help')\n", name)
		return 2
	}
	err := run(ctx, c, args)
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		if ue.msg != "" {
			fmt.Fprintf(stderr, "pollcast %s: %s\n", name, ue.msg)
		}
		return 2
	}
	c.printError(err)
	return 1
}

var clientCommands = map[string]func(context.Context, *cli, []string) error{
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

// usageError is a mistake on the command line: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// parse parses the flags, which may come before, between or after the
// positional arguments, and checks their number; it then makes the client.
func (c *cli) parse(args []string, usage string, minArgs, maxArgs int) ([]string, error) {
	c.fs.Usage = func() {
		fmt.Fprintf(c.stderr, "Usage: pollcast %s %s\n\nFlags:\n", c.name, usage)
		c.fs.PrintDefaults()
	}
	var pos []string
	for {
		if err := c.fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{} // the flag package said what is wrong
		}
		rest := c.fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
	if len(pos) < minArgs || maxArgs >= 0 && len(pos) > maxArgs {
		return nil, usageError{"usage: pollcast " + c.name + " " + usage}
	}
	client, err := sdk.New(*c.url, sdk.Config{APIKey: *c.key, UserAgent: "pollcast-cli"})
	if err != nil {
		return nil, usageError{err.Error()}
	}
	c.client = client
	return pos, nil
}

// printError reports a failed command on stderr: the problem document as
// JSON with --json, a sentence otherwise.
func (c *cli) printError(err error) {
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
func (c *cli) printJSON(v any) error {
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table returns a writer that aligns tab-separated columns; call Flush.
func (c *cli) table() *tabwriter.Writer {
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

func fmtTime(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// parseWhen reads an RFC 3339 time or a duration from now ("90m").
func parseWhen(flagName, v string) (*time.Time, error) {
	if v == "" {
		return nil, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return &t, nil
	}
	if d, err := time.ParseDuration(v); err == nil {
		t := time.Now().Add(d).UTC().Truncate(time.Second)
		return &t, nil
	}
	return nil, usageError{fmt.Sprintf("--%s %q: want an RFC 3339 time (2026-12-01T18:00:00Z) or a duration from now (90m)", flagName, v)}
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ", ") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func pollsCreate(ctx context.Context, c *cli, args []string) error {
	var options, origins listFlag
	question := c.fs.String("question", "", "the question (required)")
	c.fs.Var(&options, "option", "an answer's label; repeat for each (2 to 50)")
	kind := c.fs.String("kind", "", "single (default) or multiple")
	maxChoices := c.fs.Int("max-choices", 0, "most options one vote may choose (multiple polls; default all)")
	dedupe := c.fs.String("dedupe", "", "who votes once: device (default), ip, token or none")
	visibility := c.fs.String("visibility", "", "who sees results: always (default), after_vote, after_close or owner")
	opensAt := c.fs.String("opens-at", "", "opening time: RFC 3339 or a duration from now (default now)")
	closesAt := c.fs.String("closes-at", "", "closing time: RFC 3339 or a duration from now (default never)")
	c.fs.Var(&origins, "origin", "a web origin allowed to embed the poll (https://news.example.com); repeat; default any")
	if _, err := c.parse(args, "--question Q --option A --option B [flags]", 0, 0); err != nil {
		return err
	}
	if *question == "" || len(options) < 2 {
		return usageError{"give --question and at least two --option flags"}
	}
	opens, err := parseWhen("opens-at", *opensAt)
	if err != nil {
		return err
	}
	closes, err := parseWhen("closes-at", *closesAt)
	if err != nil {
		return err
	}
	p, err := c.client.CreatePoll(ctx, sdk.CreatePollParams{
		Question: *question, Options: options, Kind: sdk.Kind(*kind), MaxChoices: *maxChoices,
		Dedupe: sdk.Dedupe(*dedupe), ResultsVisibility: sdk.Visibility(*visibility),
		OpensAt: opens, ClosesAt: closes, AllowedOrigins: origins,
	})
	if err != nil {
		return err
	}
	return c.printPoll(p)
}

func pollsGet(ctx context.Context, c *cli, args []string) error {
	pos, err := c.parse(args, "ID", 1, 1)
	if err != nil {
		return err
	}
	var p *sdk.Poll
	switch c.name {
	case "polls open":
		p, err = c.client.OpenPoll(ctx, pos[0])
	case "polls close":
		p, err = c.client.ClosePoll(ctx, pos[0])
	default:
		p, err = c.client.GetPoll(ctx, pos[0])
	}
	if err != nil {
		return err
	}
	return c.printPoll(p)
}

func (c *cli) printPoll(p *sdk.Poll) error {
	if *c.json {
		return c.printJSON(p)
	}
	w := c.table()
	kind := string(p.Kind)
	if p.Kind == sdk.KindMultiple {
		kind += fmt.Sprintf(" (up to %d)", p.MaxChoices)
	}
	rows := [][2]string{
		{"ID", p.ID}, {"Question", clean(p.Question)}, {"Status", string(p.Status)}, {"Kind", kind},
		{"Dedupe", string(p.Dedupe)}, {"Results", string(p.ResultsVisibility)},
		{"Opens", fmtTime(p.OpensAt)}, {"Closes", fmtTime(p.ClosesAt)},
	}
	if p.VoterSecret != "" { // the owner's view
		origins := "any"
		if len(p.AllowedOrigins) > 0 {
			origins = clean(strings.Join(p.AllowedOrigins, " "))
		}
		rows = append(rows, [2]string{"Origins", origins})
	}
	rows = append(rows, [2]string{"Created", fmtTime(&p.CreatedAt)}, [2]string{"Updated", fmtTime(&p.UpdatedAt)})
	if p.VoterSecret != "" {
		rows = append(rows, [2]string{"Voter secret", p.VoterSecret})
	}
	for _, r := range rows {
		fmt.Fprintf(w, "%s\t%s\n", r[0], r[1])
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "OPTION\tLABEL")
	for _, o := range p.Options {
		fmt.Fprintf(w, "%s\t%s\n", clean(o.ID), clean(o.Label))
	}
	return w.Flush()
}

func pollsList(ctx context.Context, c *cli, args []string) error {
	status := c.fs.String("status", "", "only polls that are scheduled, open or closed")
	limit := c.fs.Int("limit", 50, "polls per page, 1 to 200")
	cursor := c.fs.String("cursor", "", "the next page, as printed by the previous one")
	all := c.fs.Bool("all", false, "every page")
	if _, err := c.parse(args, "[--status S] [--limit N] [--cursor C] [--all]", 0, 0); err != nil {
		return err
	}
	params := sdk.ListPollsParams{Limit: *limit, Cursor: *cursor, Status: sdk.Status(*status)}
	page := &sdk.PollPage{Polls: []sdk.Poll{}}
	if *all {
		for p, err := range c.client.AllPolls(ctx, params) {
			if err != nil {
				return err
			}
			page.Polls = append(page.Polls, p)
		}
	} else {
		var err error
		if page, err = c.client.ListPolls(ctx, params); err != nil {
			return err
		}
	}
	if *c.json {
		var next *string
		if page.NextCursor != "" {
			next = &page.NextCursor
		}
		return c.printJSON(map[string]any{"polls": page.Polls, "next_cursor": next})
	}
	if len(page.Polls) == 0 {
		fmt.Fprintln(c.stdout, "no polls")
		return nil
	}
	w := c.table()
	fmt.Fprintln(w, "ID\tSTATUS\tKIND\tOPTIONS\tCREATED\tQUESTION")
	for _, p := range page.Polls {
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\n", p.ID, p.Status, p.Kind, len(p.Options), fmtTime(&p.CreatedAt), clean(p.Question))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if page.NextCursor != "" {
		fmt.Fprintf(c.stderr, "more: pollcast polls list --cursor %s (or --all)\n", page.NextCursor)
	}
	return nil
}

func pollsDelete(ctx context.Context, c *cli, args []string) error {
	pos, err := c.parse(args, "ID", 1, 1)
	if err != nil {
		return err
	}
	if err := c.client.DeletePoll(ctx, pos[0]); err != nil {
		return err
	}
	if *c.json {
		return c.printJSON(map[string]any{"id": pos[0], "deleted": true})
	}
	fmt.Fprintf(c.stdout, "deleted poll %s\n", pos[0])
	return nil
}

func resultsCmd(ctx context.Context, c *cli, args []string) error {
	voter := c.fs.String("voter", "", "see the results as this voter (after_vote polls)")
	pos, err := c.parse(args, "ID [--voter V]", 1, 1)
	if err != nil {
		return err
	}
	r, err := c.client.VoterResults(ctx, pos[0], *voter)
	if err != nil {
		return err
	}
	if *c.json {
		return c.printJSON(r)
	}
	p, err := c.client.GetPoll(ctx, pos[0])
	if err != nil {
		return err
	}
	_, err = io.WriteString(c.stdout, renderResults(p, r, ""))
	return err
}

// renderResults draws a poll's results as a table with bars.
func renderResults(p *sdk.Poll, r *sdk.Results, note string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s  [%s]\n\n", clean(p.Question), r.Status)
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "OPTION\tLABEL\tVOTES\tSHARE")
	const width = 30
	for _, o := range r.Options {
		share := 0.0
		if r.Total > 0 {
			share = float64(o.Votes) / float64(r.Total)
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\n", clean(o.ID), clean(p.Label(o.ID)), o.Votes,
			strings.TrimRight(fmt.Sprintf("%5.1f%%  %s", 100*share, strings.Repeat("█", int(share*width+0.5))), " "))
	}
	_ = w.Flush()
	fmt.Fprintf(&b, "\n%d votes from %d voters · version %d · updated %s\n", r.Total, r.Voters, r.Version, fmtTime(&r.UpdatedAt))
	if note != "" {
		b.WriteString(note + "\n")
	}
	return b.String()
}

func watchCmd(ctx context.Context, c *cli, args []string) error {
	voter := c.fs.String("voter", "", "watch as this voter (after_vote polls)")
	pos, err := c.parse(args, "ID [--voter V]", 1, 1)
	if err != nil {
		return err
	}
	p, err := c.client.GetPoll(ctx, pos[0])
	if err != nil {
		return err
	}
	events, err := c.client.VoterLive(ctx, pos[0], *voter)
	if err != nil {
		return err
	}
	scr := &screen{w: c.stdout, tty: isTerminal(c.stdout)}
	var last *sdk.Results
	draw := func(note string) {
		switch {
		case last != nil:
			scr.draw(renderResults(p, last, note))
		default:
			scr.draw(fmt.Sprintf("%s\n\nresults are hidden from you%s\n", clean(p.Question), prefixed(note)))
		}
	}
	enc := json.NewEncoder(c.stdout)
	for ev := range events {
		if *c.json {
			if err := enc.Encode(jsonEvent(ev)); err != nil {
				return err
			}
		}
		switch ev.Type {
		case sdk.EventResults:
			last = ev.Results
		case sdk.EventHidden:
			last = nil
		case sdk.EventPoll:
			p = ev.Poll
		case sdk.EventDisconnected:
			if !*c.json {
				draw("connection lost; reconnecting…")
			}
			continue
		case sdk.EventEnd:
			return ev.Err
		}
		closed := last != nil && last.Status == sdk.StatusClosed || last == nil && p.Status == sdk.StatusClosed
		if !*c.json {
			note := "live · Ctrl-C to stop"
			if closed {
				note = "the poll is closed: final results"
			}
			draw(note)
		}
		if closed {
			return nil
		}
	}
	return nil // interrupted
}

func prefixed(note string) string {
	if note == "" {
		return ""
	}
	return "\n" + note
}

// jsonEvent is the JSON line watch --json prints for an event: the
// server's own message for results and poll events.
func jsonEvent(ev sdk.Event) any {
	switch ev.Type {
	case sdk.EventResults:
		return struct {
			Type sdk.EventType `json:"type"`
			*sdk.Results
		}{ev.Type, ev.Results}
	case sdk.EventPoll:
		return struct {
			Type sdk.EventType `json:"type"`
			*sdk.Poll
		}{ev.Type, ev.Poll}
	}
	m := map[string]any{"type": ev.Type}
	if ev.Err != nil {
		m["error"] = ev.Err.Error()
		if code := sdk.ErrorCode(ev.Err); code != "" {
			m["code"] = code
		}
	}
	return m
}

// screen redraws a block of text in place on a terminal, and prints each
// block after the other elsewhere.
type screen struct {
	w     io.Writer
	tty   bool
	lines int // lines of the block drawn last
}

func (s *screen) draw(block string) {
	if !s.tty {
		fmt.Fprintln(s.w, block)
		return
	}
	var b strings.Builder
	if s.lines > 0 {
		fmt.Fprintf(&b, "\x1b[%dF", s.lines) // to the start of the old block
	}
	for line := range strings.SplitSeq(strings.TrimSuffix(block, "\n"), "\n") {
		b.WriteString(line)
		b.WriteString("\x1b[K\n") // clear the rest of the old line
	}
	b.WriteString("\x1b[J") // and any old lines below
	s.lines = strings.Count(block, "\n")
	if !strings.HasSuffix(block, "\n") {
		s.lines++
	}
	_, _ = io.WriteString(s.w, b.String())
}

// isTerminal reports whether w is a terminal, where output is redrawn in place.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func voteCmd(ctx context.Context, c *cli, args []string) error {
	voter := c.fs.String("voter", "", "the voter: a device id (device polls) or a voter token (token polls)")
	key := c.fs.String("idempotency-key", "", "the vote's idempotency key (default: a new random one)")
	pos, err := c.parse(args, "ID OPTION... [--voter V]", 2, -1)
	if err != nil {
		return err
	}
	rc, err := c.client.Vote(ctx, pos[0], sdk.Vote{Options: pos[1:], Voter: *voter, IdempotencyKey: *key})
	if err != nil {
		return err
	}
	if *c.json {
		return c.printJSON(map[string]any{"vote_id": rc.VoteID, "poll_id": rc.PollID, "status": rc.Status,
			"idempotency_key": rc.IdempotencyKey, "attempts": rc.Attempts})
	}
	fmt.Fprintf(c.stdout, "vote %s accepted: stored, and counted once\n", rc.VoteID)
	return nil
}

func keysCreate(ctx context.Context, c *cli, args []string) error {
	name := c.fs.String("name", "", "a name to recognise the key by")
	role := c.fs.String("role", "owner", "owner (manages its own polls) or admin (everything)")
	if _, err := c.parse(args, "--name N [--role owner|admin]", 0, 0); err != nil {
		return err
	}
	k, err := c.client.CreateKey(ctx, *name, sdk.Role(*role))
	if err != nil {
		return err
	}
	if *c.json {
		return c.printJSON(k)
	}
	w := c.table()
	fmt.Fprintf(w, "ID\t%s\nName\t%s\nRole\t%s\nCreated\t%s\nKey\t%s\n", k.ID, clean(k.Name), k.Role, fmtTime(&k.CreatedAt), k.Key)
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(c.stderr, "The key is shown this once: store it now.")
	return nil
}

func keysList(ctx context.Context, c *cli, args []string) error {
	if _, err := c.parse(args, "", 0, 0); err != nil {
		return err
	}
	keys, err := c.client.ListKeys(ctx)
	if err != nil {
		return err
	}
	if *c.json {
		if keys == nil {
			keys = []sdk.APIKey{}
		}
		return c.printJSON(map[string]any{"keys": keys})
	}
	w := c.table()
	fmt.Fprintln(w, "ID\tROLE\tCREATED\tNAME")
	for _, k := range keys {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", k.ID, k.Role, fmtTime(&k.CreatedAt), clean(k.Name))
	}
	return w.Flush()
}

func keysDelete(ctx context.Context, c *cli, args []string) error {
	pos, err := c.parse(args, "ID", 1, 1)
	if err != nil {
		return err
	}
	if err := c.client.DeleteKey(ctx, pos[0]); err != nil {
		return err
	}
	if *c.json {
		return c.printJSON(map[string]any{"id": pos[0], "deleted": true})
	}
	fmt.Fprintf(c.stdout, "deleted key %s\n", pos[0])
	return nil
}
