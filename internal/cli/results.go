package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/pollcast/pollcast/internal/cmdline"
	"github.com/pollcast/pollcast/sdk"
)

// resultsCmd runs `pollcast results ID`.
func resultsCmd(ctx context.Context, c *command, args []string) error {
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

// renderResults draws a poll's results as a table with bars, then a
// summary line and note, when not empty.
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

// watchCmd runs `pollcast watch ID`: it redraws the results as they change
// (with --json, prints each event as a line) and returns once the poll is
// closed, the live stream ends, or ctx is done.
func watchCmd(ctx context.Context, c *command, args []string) error {
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
	scr := &screen{w: c.stdout, tty: cmdline.IsTerminal(c.stdout)}
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
