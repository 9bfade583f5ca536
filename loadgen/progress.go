package loadgen

import (
	"context"
	"fmt"
	"time"

	"github.com/pollcast/pollcast/internal/cmdline"
)

// startProgress prints a progress line on stderr every second until the
// returned function is called (or ctx ends).
func (g *Generator) startProgress(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	tty := cmdline.IsTerminal(g.stderr)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		var lastOK int64
		for {
			select {
			case <-ctx.Done():
				if tty {
					fmt.Fprintln(g.stderr)
				}
				return
			case <-t.C:
			}
			ok := g.st.ok.Load()
			line := g.progressLine(ok - lastOK)
			lastOK = ok
			if tty {
				fmt.Fprintf(g.stderr, "\r%s\x1b[K", line)
			} else {
				fmt.Fprintln(g.stderr, line)
			}
		}
	}()
	return func() { cancel(); <-done }
}

func (g *Generator) progressLine(okLastSecond int64) string {
	line := fmt.Sprintf("bench %s: %4.0fs  sent %d  ok %d  errors %d  %d ok/s",
		g.cfg.Scenario, time.Since(g.start).Seconds(), g.st.sent.Load(), g.st.ok.Load(), g.st.failed.Load(), okLastSecond)
	if g.pace != nil {
		line += fmt.Sprintf("  behind %d", g.pace.behind())
	}
	if v := g.viewers; v != nil {
		line += fmt.Sprintf("  viewers %d (dropped %d)", v.connected.Load()-v.dropped.Load(), v.dropped.Load())
	}
	return line
}
