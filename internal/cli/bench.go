package cli

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/pollcast/pollcast/internal/cmdline"
	"github.com/pollcast/pollcast/loadgen"
)

// `pollcast bench SCENARIO [flags]` runs package loadgen against a server:
// Bench reads its command line and turns the outcome into the exit status.

const benchUsage = `SCENARIO [flags]

Scenarios:
  http     single votes: POST /v1/polls/{id}/votes
  ws       votes over WebSocket (/v1/polls/{id}/live), --pipeline votes in flight per connection
  batch    POST /v1/votes/batch, --batch-size votes a request (needs an owner or admin --key)
  viewers  --viewers live viewers on one poll while votes arrive over HTTP; measures
           the time from a vote's 202 to each viewer seeing it counted

Without --poll a poll with dedupe "none" is created with --key. After the run the
results are read until they stop moving: the exit status is 0 when the run
completed and the poll counted exactly the votes answered 202, 1 otherwise.`

// benchConfig is what `pollcast bench` was told: the run, and how to
// report on it.
type benchConfig struct {
	run        loadgen.Config
	json       bool   // print the summary as JSON
	cpuProfile string // file for the load generator's own CPU profile
}

// parseBenchConfig reads the command line; flags may come before or after
// the scenario. Mistakes are cmdline.UsageErrors.
func parseBenchConfig(args []string, getenv func(string) string, stderr io.Writer) (benchConfig, error) {
	var c benchConfig
	r := &c.run
	fs := flag.NewFlagSet("pollcast bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&r.URL, "url", cmp.Or(getenv("POLLCAST_URL"), "http://127.0.0.1:8080"), "server address (env POLLCAST_URL)")
	fs.StringVar(&r.Key, "key", getenv("POLLCAST_API_KEY"), "API key (env POLLCAST_API_KEY): creates the poll; batch needs it")
	fs.StringVar(&r.Poll, "poll", "", "vote on this existing poll (default: create one with dedupe none)")
	fs.StringVar(&r.Option, "option", "a", "the option id every vote chooses")
	fs.DurationVar(&r.Duration, "duration", 10*time.Second, "how long to send votes")
	fs.Float64Var(&r.Rate, "rate", 0, "target votes/s, open loop (0: as fast as possible)")
	fs.IntVar(&r.Concurrency, "concurrency", 64, "connections (ws) or workers (http, batch, viewers' voters)")
	fs.IntVar(&r.Pipeline, "pipeline", 8, "ws: votes in flight on one connection (the server queues at most 8)")
	fs.IntVar(&r.BatchSize, "batch-size", 1000, "batch: votes a request (1 to 1000)")
	fs.IntVar(&r.Voters, "voters", 0, "size of the voter id pool (0: a new voter id for every vote)")
	fs.IntVar(&r.Viewers, "viewers", 100, "viewers: live viewers, each on its own connection")
	fs.StringVar(&r.Live, "live", "ws", "viewers: ws (WebSocket) or sse (Server-Sent Events)")
	fs.IntVar(&r.Sources, "sources", 1, "spread connections over source addresses 127.0.0.1..127.0.0.N (loopback targets)")
	fs.BoolVar(&c.json, "json", false, "print the summary as JSON")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write the load generator's own CPU profile to this file (go tool pprof)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: pollcast bench %s\n\nFlags:\n", benchUsage)
		fs.PrintDefaults()
	}
	pos, err := cmdline.Parse(fs, args)
	if err != nil {
		return c, err
	}
	if len(pos) != 1 {
		return c, cmdline.UsageError{Msg: "usage: pollcast bench " + strings.Join(loadgen.Scenarios(), "|") + " [flags] (try 'pollcast bench -h')"}
	}
	r.Scenario = pos[0]
	if err := r.Check(); err != nil {
		return c, cmdline.UsageError{Msg: err.Error()}
	}
	return c, nil
}

// Bench runs `pollcast bench`: exit status 0 when the run completed and
// the count was exact, 1 when not, 2 for a mistake on the command line.
func Bench(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cfg, err := parseBenchConfig(args, getenv, stderr)
	var ue cmdline.UsageError
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		if ue.Msg != "" {
			fmt.Fprintf(stderr, "pollcast bench: %s\n", ue.Msg)
		}
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	g, err := loadgen.New(stderr, cfg.run)
	if err != nil {
		fmt.Fprintf(stderr, "pollcast bench: %v\n", err)
		return 2
	}
	defer g.Close()
	if cfg.cpuProfile != "" {
		f, err := os.Create(cfg.cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintf(stderr, "pollcast bench: --cpuprofile: %v\n", err)
			return 2
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	sum, err := g.Run(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "pollcast bench: %v\n", err)
		return 1
	}
	if cfg.json {
		err = sum.WriteJSON(stdout)
	} else {
		err = sum.Print(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "pollcast bench: %v\n", err)
		return 1
	}
	if !sum.Passed {
		return 1
	}
	return 0
}
