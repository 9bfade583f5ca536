package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/pollcast/pollcast/sdk"
)

// `pollcast bench SCENARIO [flags]`: a load generator to run against one's
// own deployment. The hot path speaks HTTP and WebSocket itself (package
// sdk retries, which would hide errors); sdk only creates the poll and
// reads the results for the exactness check at the end.

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

var benchScenarios = []string{"http", "ws", "batch", "viewers"}

// benchConfig is what `pollcast bench` was told.
type benchConfig struct {
	scenario    string
	url, key    string
	poll        string
	option      string
	duration    time.Duration
	rate        float64 // votes/s; 0 means as fast as possible
	concurrency int
	pipeline    int
	batchSize   int
	voters      int // voter id pool; 0 means a new id for every vote
	viewers     int
	live        string // ws or sse
	sources     int
	json        bool
	cpuProfile  string // file for the load generator's own CPU profile
}

// parseBenchConfig reads the command line; flags may come before or after
// the scenario. Mistakes are usageErrors.
func parseBenchConfig(args []string, getenv func(string) string, stderr io.Writer) (benchConfig, error) {
	var c benchConfig
	fs := flag.NewFlagSet("pollcast bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.url, "url", cmp.Or(getenv("POLLCAST_URL"), "http://127.0.0.1:8080"), "server address (env POLLCAST_URL)")
	fs.StringVar(&c.key, "key", getenv("POLLCAST_API_KEY"), "API key (env POLLCAST_API_KEY): creates the poll; batch needs it")
	fs.StringVar(&c.poll, "poll", "", "vote on this existing poll (default: create one with dedupe none)")
	fs.StringVar(&c.option, "option", "a", "the option id every vote chooses")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "how long to send votes")
	fs.Float64Var(&c.rate, "rate", 0, "target votes/s, open loop (0: as fast as possible)")
	fs.IntVar(&c.concurrency, "concurrency", 64, "connections (ws) or workers (http, batch, viewers' voters)")
	fs.IntVar(&c.pipeline, "pipeline", 8, "ws: votes in flight on one connection (the server queues at most 8)")
	fs.IntVar(&c.batchSize, "batch-size", 1000, "batch: votes a request (1 to 1000)")
	fs.IntVar(&c.voters, "voters", 0, "size of the voter id pool (0: a new voter id for every vote)")
	fs.IntVar(&c.viewers, "viewers", 100, "viewers: live viewers, each on its own connection")
	fs.StringVar(&c.live, "live", "ws", "viewers: ws (WebSocket) or sse (Server-Sent Events)")
	fs.IntVar(&c.sources, "sources", 1, "spread connections over source addresses 127.0.0.1..127.0.0.N (loopback targets)")
	fs.BoolVar(&c.json, "json", false, "print the summary as JSON")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write the load generator's own CPU profile to this file (go tool pprof)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: pollcast bench %s\n\nFlags:\n", benchUsage)
		fs.PrintDefaults()
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return c, err
	}
	if len(pos) != 1 {
		return c, usageError{"usage: pollcast bench " + strings.Join(benchScenarios, "|") + " [flags] (try 'pollcast bench -h')"}
	}
	c.scenario = pos[0]
	return c, c.check()
}

// parseInterleaved parses fs from args, where flags and positional
// arguments may alternate, and returns the positional ones.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{} // the flag package said what is wrong
		}
		rest := fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

// check validates the configuration.
func (c *benchConfig) check() error {
	bad := func(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }
	switch {
	case !slices.Contains(benchScenarios, c.scenario):
		return bad("unknown scenario %q: want %s", c.scenario, strings.Join(benchScenarios, ", "))
	case c.duration <= 0:
		return bad("--duration must be positive")
	case c.rate < 0 || math.IsNaN(c.rate) || math.IsInf(c.rate, 0):
		return bad("--rate must be 0 (as fast as possible) or more")
	case c.concurrency < 1:
		return bad("--concurrency must be at least 1")
	case c.pipeline < 1:
		return bad("--pipeline must be at least 1")
	case c.batchSize < 1 || c.batchSize > 1000:
		return bad("--batch-size must be 1 to 1000")
	case c.voters < 0:
		return bad("--voters must be 0 (a new id for every vote) or more")
	case c.scenario == "viewers" && c.viewers < 1:
		return bad("--viewers must be at least 1")
	case c.live != "ws" && c.live != "sse":
		return bad("--live must be ws or sse")
	case c.sources < 1 || c.sources > 65534:
		return bad("--sources must be 1 to 65534")
	case c.option == "":
		return bad("--option must not be empty")
	case c.scenario == "batch" && c.key == "":
		return bad("batch needs an owner or admin API key: give --key or POLLCAST_API_KEY")
	case c.poll == "" && c.key == "":
		return bad("give --poll ID, or an API key (--key or POLLCAST_API_KEY) to create a poll")
	}
	u, err := url.Parse(c.url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return bad("--url %q: want http(s)://host[:port]", c.url)
	}
	return nil
}

// runBench runs `pollcast bench`.
func runBench(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cfg, err := parseBenchConfig(args, getenv, stderr)
	var ue usageError
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		if ue.msg != "" {
			fmt.Fprintf(stderr, "pollcast bench: %s\n", ue.msg)
		}
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b, err := newBench(cfg, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "pollcast bench: %v\n", err)
		return 2
	}
	defer b.close()
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
	sum, err := b.run(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "pollcast bench: %v\n", err)
		return 1
	}
	if cfg.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(sum)
	} else {
		err = sum.print(stdout)
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

// bench is one run of a scenario.
type bench struct {
	cfg      benchConfig
	stderr   io.Writer
	net      *benchNet
	setup    *sdk.Client // creating the poll, reading results: retries welcome
	pollID   string
	created  bool
	runID    string // makes voter ids unique across runs
	voterSeq atomic.Uint64
	st       *benchStats
	pace     *pacer
	start    time.Time
	viewers  *viewerSet // viewers scenario only
}

func newBench(cfg benchConfig, stderr io.Writer) (*bench, error) {
	n, err := newBenchNet(cfg)
	if err != nil {
		return nil, err
	}
	setup, err := sdk.New(cfg.url, sdk.Config{APIKey: cfg.key, UserAgent: "pollcast-bench"})
	if err != nil {
		return nil, err
	}
	if cfg.sources > 1 && !n.loopback {
		fmt.Fprintf(stderr, "bench: --sources applies to loopback targets only: %s is not one, ignored\n", cfg.url)
	}
	id := make([]byte, 4)
	_, _ = rand.Read(id)
	return &bench{cfg: cfg, stderr: stderr, net: n, setup: setup, runID: "bench-" + hex.EncodeToString(id), st: newBenchStats()}, nil
}

func (b *bench) close() { b.net.close() }

// run prepares the poll, runs the scenario, and checks the count.
func (b *bench) run(ctx context.Context) (*benchSummary, error) {
	b.checkFileLimit()
	if err := b.preparePoll(ctx); err != nil {
		return nil, err
	}
	before, err := b.total(ctx)
	if err != nil {
		return nil, fmt.Errorf("results before the run: %w", err)
	}
	b.start = time.Now()
	unit := 1
	if b.cfg.scenario == "batch" {
		unit = b.cfg.batchSize
	}
	b.pace = newPacer(b.cfg.rate, unit, b.cfg.concurrency)
	if b.cfg.scenario == "viewers" {
		b.viewers = newViewerSet(b, before)
	}
	stopProgress := b.startProgress(ctx)
	var elapsed time.Duration
	if b.viewers != nil {
		elapsed, err = b.runViewers(ctx)
	} else {
		elapsed, err = b.runLoad(ctx)
	}
	stopProgress()
	if err != nil {
		return nil, err
	}
	sum := b.summary(elapsed)
	if ctx.Err() != nil {
		sum.Interrupted = true
		return sum, nil
	}
	sum.Check = b.checkExact(ctx, before, sum.OK, sum.Unknown)
	sum.Passed = sum.Check.Passed
	return sum, nil
}

// checkFileLimit raises the limit on open files and says so when it is
// still too low for the connections asked for.
func (b *bench) checkFileLimit() {
	need := uint64(b.cfg.concurrency) + 64
	if b.cfg.scenario == "viewers" {
		need += uint64(b.cfg.viewers)
	}
	limit, err := raiseFileLimit()
	switch {
	case err != nil:
		fmt.Fprintf(b.stderr, "bench: cannot raise the open file limit (%v); %d connections may fail\n", err, need)
	case limit < need:
		fmt.Fprintf(b.stderr, "bench: the open file limit is %d (hard limit), about %d are needed: connections past it will fail (raise it with ulimit -n)\n", limit, need)
	}
}

// preparePoll uses --poll, or creates a poll every vote counts in.
func (b *bench) preparePoll(ctx context.Context) error {
	if b.cfg.poll != "" {
		b.pollID = b.cfg.poll
		return nil
	}
	p, err := b.setup.CreatePoll(ctx, sdk.CreatePollParams{
		Question: "pollcast bench " + b.cfg.scenario + " " + time.Now().UTC().Format(time.RFC3339),
		Options:  []string{"Yes", "No"}, Dedupe: sdk.DedupeNone,
	})
	if err != nil {
		return fmt.Errorf("create a poll: %w", err)
	}
	b.pollID, b.created = p.ID, true
	fmt.Fprintf(b.stderr, "bench: created poll %s (dedupe none) on %s\n", p.ID, b.cfg.url)
	return nil
}

// total reads the poll's total.
func (b *bench) total(ctx context.Context) (int64, error) {
	r, err := b.setup.Results(ctx, b.pollID)
	if err != nil {
		return 0, err
	}
	return r.Total, nil
}

// voter returns the voter id of the next vote.
func (b *bench) voter() string {
	n := b.voterSeq.Add(1)
	if b.cfg.voters > 0 {
		n %= uint64(b.cfg.voters)
	}
	return fmt.Sprintf("%s-%d", b.runID, n)
}

// exactness is the check that the poll counted exactly the accepted votes.
type exactness struct {
	Accepted int64 `json:"accepted"`
	// Counted is the poll's total after the run minus Before.
	Counted int64 `json:"counted"`
	Before  int64 `json:"before"`
	After   int64 `json:"after"`
	// Settled is false when the total still moved at the deadline.
	Settled bool `json:"settled"`
	// Unknown is how many votes got no answer: each may or may not be
	// counted, so with any the check is inconclusive unless the count is
	// plainly wrong (fewer than accepted, or more than accepted + unknown).
	Unknown int64  `json:"unknown"`
	Passed  bool   `json:"passed"`
	Error   string `json:"error,omitempty"`
}

const (
	settleDeadline = 10 * time.Second
	settleStable   = time.Second // the total must stay put this long
	settleEvery    = 100 * time.Millisecond
)

// checkExact reads the results until the total stops moving and compares
// what it gained with the votes answered 202.
func (b *bench) checkExact(ctx context.Context, before, accepted, unknown int64) exactness {
	x := exactness{Accepted: accepted, Before: before, Unknown: unknown}
	after, settled, err := b.settle(ctx)
	if err != nil {
		x.Error = err.Error()
		return x
	}
	x.After, x.Settled, x.Counted = after, settled, after-before
	x.Passed = accepted > 0 && unknown == 0 && x.Counted == accepted
	return x
}

// settle polls the total until it stays the same for settleStable, or
// settleDeadline passes (settled false).
func (b *bench) settle(ctx context.Context) (total int64, settled bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, settleDeadline)
	defer cancel()
	t := time.NewTicker(settleEvery)
	defer t.Stop()
	last, since := int64(-1), time.Now()
	for {
		cur, err := b.total(ctx)
		switch {
		case ctx.Err() != nil && last >= 0:
			return last, false, nil
		case err != nil:
			return 0, false, fmt.Errorf("results after the run: %w", err)
		case cur != last:
			last, since = cur, time.Now()
		case time.Since(since) >= settleStable:
			return cur, true, nil
		}
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
}

// benchSummary is the outcome of a run (the --json output).
type benchSummary struct {
	Scenario    string  `json:"scenario"`
	URL         string  `json:"url"`
	PollID      string  `json:"poll_id"`
	CreatedPoll bool    `json:"created_poll"`
	DurationS   float64 `json:"duration_s"`
	Concurrency int     `json:"concurrency"`
	TargetRate  float64 `json:"target_rate,omitempty"`
	// Behind counts votes due by the target rate but never sent.
	Behind int64 `json:"behind,omitempty"`
	Sent   int64 `json:"sent"`
	OK     int64 `json:"ok"`
	Errors int64 `json:"errors"`
	// Unknown counts votes sent without an answer (transport errors): the
	// server may or may not have counted them.
	Unknown    int64          `json:"unknown_outcome"`
	Throughput float64        `json:"throughput"` // ok votes/s
	Latency    latencySummary `json:"latency"`
	// VoteLatency is the request latency of the votes (viewers scenario).
	VoteLatency *latencySummary  `json:"vote_latency,omitempty"`
	ErrorCodes  map[string]int64 `json:"error_codes"`
	// ConnectErrors counts connections that could not be opened or broke
	// (ws, viewers); FirstConnectError says why the first did.
	ConnectErrors     int64          `json:"connect_errors"`
	FirstConnectError string         `json:"first_connect_error,omitempty"`
	Viewers           *viewerSummary `json:"viewers,omitempty"`
	Check             exactness      `json:"exactness"`
	// Interrupted is true when the run was stopped by a signal.
	Interrupted bool `json:"interrupted,omitempty"`
	Passed      bool `json:"passed"`
}

// latencySummary gives percentiles in milliseconds.
type latencySummary struct {
	// Of is "request" (a vote or batch request to its answer) or
	// "vote_to_viewer" (a vote's 202 to a viewer seeing it counted).
	Of    string  `json:"of"`
	Count int64   `json:"count"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

func latencyOf(of string, h *histogram) latencySummary {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return latencySummary{Of: of, Count: h.Count(), P50: ms(h.Quantile(.5)), P90: ms(h.Quantile(.9)),
		P99: ms(h.Quantile(.99)), Max: ms(h.Max())}
}

func (b *bench) summary(elapsed time.Duration) *benchSummary {
	s := &benchSummary{
		Scenario: b.cfg.scenario, URL: b.cfg.url, PollID: b.pollID, CreatedPoll: b.created,
		DurationS: elapsed.Seconds(), Concurrency: b.cfg.concurrency, TargetRate: b.cfg.rate,
		Behind: b.pace.behind(), Sent: b.st.sent.Load(), OK: b.st.ok.Load(), Errors: b.st.failed.Load(),
		Unknown: b.st.unknown.Load(), ErrorCodes: b.st.codeCounts(), Latency: latencyOf("request", b.st.lat),
	}
	s.ConnectErrors, s.FirstConnectError = b.st.connErrorCounts()
	if elapsed > 0 {
		s.Throughput = float64(s.OK) / elapsed.Seconds()
	}
	if b.viewers != nil {
		s.Viewers = b.viewers.summary()
		votes := s.Latency
		s.VoteLatency = &votes
		s.Latency = latencyOf("vote_to_viewer", b.viewers.lat)
	}
	return s
}

// print writes the summary for people.
func (s *benchSummary) print(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	poll := s.PollID
	if s.CreatedPoll {
		poll += " (created, dedupe none)"
	}
	rate := "as fast as possible"
	if s.TargetRate > 0 {
		rate = fmt.Sprintf("target %.0f votes/s, %d behind", s.TargetRate, s.Behind)
	}
	fmt.Fprintf(tw, "scenario\t%s on %s, concurrency %d, %s\n", s.Scenario, s.URL, s.Concurrency, rate)
	fmt.Fprintf(tw, "poll\t%s\n", poll)
	fmt.Fprintf(tw, "duration\t%.2fs\n", s.DurationS)
	fmt.Fprintf(tw, "votes\tsent %d, ok %d, errors %d (outcome unknown: %d)\n", s.Sent, s.OK, s.Errors, s.Unknown)
	fmt.Fprintf(tw, "throughput\t%.0f ok votes/s\n", s.Throughput)
	l := s.Latency
	fmt.Fprintf(tw, "latency\t%s: p50 %.2fms  p90 %.2fms  p99 %.2fms  max %.2fms  (%d samples)\n",
		strings.ReplaceAll(l.Of, "_", " "), l.P50, l.P90, l.P99, l.Max, l.Count)
	if l := s.VoteLatency; l != nil {
		fmt.Fprintf(tw, "\t%s: p50 %.2fms  p90 %.2fms  p99 %.2fms  max %.2fms  (%d samples)\n",
			strings.ReplaceAll(l.Of, "_", " "), l.P50, l.P90, l.P99, l.Max, l.Count)
	}
	if v := s.Viewers; v != nil {
		fmt.Fprintf(tw, "viewers\t%d of %d connected (%s), %d failed to connect, %d dropped, %d saw the final total\n",
			v.Connected, v.Wanted, v.Live, v.Failed, v.Dropped, v.CaughtUp)
	}
	fmt.Fprintf(tw, "errors\t%s\n", formatCodes(s.ErrorCodes))
	if s.ConnectErrors > 0 {
		fmt.Fprintf(tw, "connections\t%d failed, the first: %s\n", s.ConnectErrors, s.FirstConnectError)
	}
	fmt.Fprintf(tw, "exactness\t%s\n", s.Check.describe(s.CreatedPoll, s.Interrupted))
	return tw.Flush()
}

func formatCodes(codes map[string]int64) string {
	if len(codes) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(codes))
	for k := range codes {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return cmp.Or(cmp.Compare(codes[b], codes[a]), cmp.Compare(a, b)) })
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, codes[k])
	}
	return strings.Join(parts, ", ")
}

func (x exactness) describe(created, interrupted bool) string {
	switch {
	case interrupted:
		return "not checked: interrupted"
	case x.Error != "":
		return "FAILED: " + x.Error
	}
	counted := fmt.Sprintf("counted %d", x.Counted)
	if !created {
		counted = fmt.Sprintf("counted %d (total %d -> %d)", x.Counted, x.Before, x.After)
	}
	verdict := "ok"
	switch {
	case x.Accepted == 0:
		verdict = "FAILED: no vote was accepted"
	case x.Unknown > 0 && x.Counted >= x.Accepted && x.Counted <= x.Accepted+x.Unknown:
		verdict = fmt.Sprintf("INCONCLUSIVE: %d votes got no answer", x.Unknown)
	case !x.Passed:
		verdict = "FAILED"
	}
	if !x.Settled {
		verdict += fmt.Sprintf(" (the total still moved after %v)", settleDeadline)
	}
	return fmt.Sprintf("accepted %d, %s: %s", x.Accepted, counted, verdict)
}
