package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/pollcast/pollcast/internal/cmdline"
	"github.com/pollcast/pollcast/sdk"
)

// pollsCreate runs `pollcast polls create`.
func pollsCreate(ctx context.Context, c *command, args []string) error {
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
		return cmdline.UsageError{Msg: "give --question and at least two --option flags"}
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

// parseWhen reads an RFC 3339 time or a duration from now ("90m"); empty
// means none.
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
	return nil, cmdline.UsageError{Msg: fmt.Sprintf("--%s %q: want an RFC 3339 time (2026-12-01T18:00:00Z) or a duration from now (90m)", flagName, v)}
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ", ") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// pollsGet runs `pollcast polls get|open|close ID`: each prints the poll.
func pollsGet(ctx context.Context, c *command, args []string) error {
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

// printPoll prints a poll as a two-column table and its options; the
// owner's view adds the allowed origins and the voter secret.
func (c *command) printPoll(p *sdk.Poll) error {
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

// pollsList runs `pollcast polls list`: one page, or every page with --all.
// The next page's cursor goes to stderr, so stdout stays one table.
func pollsList(ctx context.Context, c *command, args []string) error {
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

// pollsDelete runs `pollcast polls delete ID [--purge]`.
func pollsDelete(ctx context.Context, c *command, args []string) error {
	purge := c.fs.Bool("purge", false, "erase the poll: its votes, counts, voters and analytics (also of a poll deleted before)")
	pos, err := c.parse(args, "ID [--purge]", 1, 1)
	if err != nil {
		return err
	}
	if !*purge {
		return c.deleted("poll", pos[0], c.client.DeletePoll(ctx, pos[0]))
	}
	if err := c.client.DeletePoll(ctx, pos[0], sdk.Purge()); err != nil {
		return err
	}
	if *c.json {
		return c.printJSON(map[string]any{"id": pos[0], "deleted": true, "purged": true})
	}
	fmt.Fprintf(c.stdout, "erased poll %s\n", pos[0])
	return nil
}
