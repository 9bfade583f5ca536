package loadgen

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pollcast/pollcast/sdk"
)

// scenarios are the values Config.Scenario takes, in the order usage lists them.
var scenarios = []string{"http", "ws", "batch", "viewers"}

// Scenarios returns the names of the scenarios: http, ws, batch, viewers.
func Scenarios() []string { return slices.Clone(scenarios) }

// Config is what one run is told. `pollcast bench` fills it from its
// flags; the messages of Check name the fields by those flags.
type Config struct {
	// Scenario is one of Scenarios. Zero value is refused.
	Scenario string
	// URL is the server, http(s)://host[:port]. Zero value is refused.
	URL string
	// Key is the API key that creates the poll and sends batches (it must
	// be an owner or admin key for batch); it is also given to the live
	// connections so results are visible whatever the poll's visibility.
	// Zero value means none: Poll must be set, and batch is refused.
	Key string
	// Poll is the id of an existing poll to vote on. Zero value means a
	// poll with dedupe "none" is created with Key.
	Poll string
	// Option is the option id every vote chooses. Zero value is refused.
	Option string
	// Duration is how long votes are sent. Zero value is refused.
	Duration time.Duration
	// Rate is the target votes per second, open loop. Zero value means as
	// fast as possible.
	Rate float64
	// Concurrency is the number of connections (ws) or workers (http,
	// batch, the voters of viewers). Zero value is refused.
	Concurrency int
	// Pipeline is, for ws, the votes in flight on one connection. Zero
	// value is refused.
	Pipeline int
	// BatchSize is, for batch, the votes a request: 1 to 1000. Zero value
	// is refused.
	BatchSize int
	// Voters is the size of the voter id pool. Zero value means a new
	// voter id for every vote.
	Voters int
	// Viewers is, for viewers, the live viewers, each on its own
	// connection. Zero value is refused by that scenario.
	Viewers int
	// Live is, for viewers, how they follow the poll: "ws" (WebSocket) or
	// "sse" (Server-Sent Events). Zero value is refused.
	Live string
	// Sources spreads connections over the source addresses 127.0.0.1 to
	// 127.0.0.N when URL is a loopback address: 1 to 65534. Zero value is
	// refused.
	Sources int
}

// Check validates the configuration. Its messages name the fields by the
// flags of `pollcast bench`.
func (c Config) Check() error {
	bad := func(format string, a ...any) error { return fmt.Errorf(format, a...) }
	switch {
	case !slices.Contains(scenarios, c.Scenario):
		return bad("unknown scenario %q: want %s", c.Scenario, strings.Join(scenarios, ", "))
	case c.Duration <= 0:
		return bad("--duration must be positive")
	case c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0):
		return bad("--rate must be 0 (as fast as possible) or more")
	case c.Concurrency < 1:
		return bad("--concurrency must be at least 1")
	case c.Pipeline < 1:
		return bad("--pipeline must be at least 1")
	case c.BatchSize < 1 || c.BatchSize > 1000:
		return bad("--batch-size must be 1 to 1000")
	case c.Voters < 0:
		return bad("--voters must be 0 (a new id for every vote) or more")
	case c.Scenario == "viewers" && c.Viewers < 1:
		return bad("--viewers must be at least 1")
	case c.Live != "ws" && c.Live != "sse":
		return bad("--live must be ws or sse")
	case c.Sources < 1 || c.Sources > 65534:
		return bad("--sources must be 1 to 65534")
	case c.Option == "":
		return bad("--option must not be empty")
	case c.Scenario == "batch" && c.Key == "":
		return bad("batch needs an owner or admin API key: give --key or POLLCAST_API_KEY")
	case c.Poll == "" && c.Key == "":
		return bad("give --poll ID, or an API key (--key or POLLCAST_API_KEY) to create a poll")
	}
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return bad("--url %q: want http(s)://host[:port]", c.URL)
	}
	return nil
}

// Generator is one run of a scenario. Run it once, then Close it.
type Generator struct {
	cfg      Config
	stderr   io.Writer
	net      *network
	setup    *sdk.Client // creating the poll, reading results: retries welcome
	pollID   string
	created  bool
	runID    string // makes voter ids unique across runs
	voterSeq atomic.Uint64
	st       *stats
	pace     *pacer
	start    time.Time
	viewers  *viewerSet // viewers scenario only
}

// New checks cfg and returns a generator for it. Progress lines and
// notices go to stderr while it runs.
func New(stderr io.Writer, cfg Config) (*Generator, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	n, err := newNetwork(cfg)
	if err != nil {
		return nil, err
	}
	setup, err := sdk.New(cfg.URL, sdk.Config{APIKey: cfg.Key, UserAgent: "pollcast-bench"})
	if err != nil {
		return nil, err
	}
	if cfg.Sources > 1 && !n.loopback {
		fmt.Fprintf(stderr, "bench: --sources applies to loopback targets only: %s is not one, ignored\n", cfg.URL)
	}
	id := make([]byte, 4)
	_, _ = rand.Read(id)
	return &Generator{cfg: cfg, stderr: stderr, net: n, setup: setup, runID: "bench-" + hex.EncodeToString(id), st: newStats()}, nil
}

// Close releases the idle connections.
func (g *Generator) Close() { g.net.close() }

// Run prepares the poll, runs the scenario, and checks the count. When ctx
// ends early the votes in flight are still answered, and the summary says
// Interrupted without a check. An error means no summary could be made:
// the poll could not be created or read, or no viewer could connect.
func (g *Generator) Run(ctx context.Context) (*Summary, error) {
	g.checkFileLimit()
	if err := g.preparePoll(ctx); err != nil {
		return nil, err
	}
	before, err := g.total(ctx)
	if err != nil {
		return nil, fmt.Errorf("results before the run: %w", err)
	}
	g.start = time.Now()
	unit := 1
	if g.cfg.Scenario == "batch" {
		unit = g.cfg.BatchSize
	}
	g.pace = newPacer(g.cfg.Rate, unit, g.cfg.Concurrency)
	if g.cfg.Scenario == "viewers" {
		g.viewers = newViewerSet(g, before)
	}
	stopProgress := g.startProgress(ctx)
	var elapsed time.Duration
	if g.viewers != nil {
		elapsed, err = g.runViewers(ctx)
	} else {
		elapsed, err = g.runLoad(ctx)
	}
	stopProgress()
	if err != nil {
		return nil, err
	}
	sum := g.summary(elapsed)
	if ctx.Err() != nil {
		sum.Interrupted = true
		return sum, nil
	}
	sum.Check = g.checkExact(ctx, before, sum.OK, sum.Unknown)
	sum.Passed = sum.Check.Passed
	return sum, nil
}

// checkFileLimit raises the limit on open files and says so when it is
// still too low for the connections asked for.
func (g *Generator) checkFileLimit() {
	need := uint64(g.cfg.Concurrency) + 64
	if g.cfg.Scenario == "viewers" {
		need += uint64(g.cfg.Viewers)
	}
	limit, err := raiseFileLimit()
	switch {
	case err != nil:
		fmt.Fprintf(g.stderr, "bench: cannot raise the open file limit (%v); %d connections may fail\n", err, need)
	case limit < need:
		fmt.Fprintf(g.stderr, "bench: the open file limit is %d (hard limit), about %d are needed: connections past it will fail (raise it with ulimit -n)\n", limit, need)
	}
}

// preparePoll uses Config.Poll, or creates a poll every vote counts in.
func (g *Generator) preparePoll(ctx context.Context) error {
	if g.cfg.Poll != "" {
		g.pollID = g.cfg.Poll
		return nil
	}
	p, err := g.setup.CreatePoll(ctx, sdk.CreatePollParams{
		Question: "pollcast bench " + g.cfg.Scenario + " " + time.Now().UTC().Format(time.RFC3339),
		Options:  []string{"Yes", "No"}, Dedupe: sdk.DedupeNone,
	})
	if err != nil {
		return fmt.Errorf("create a poll: %w", err)
	}
	g.pollID, g.created = p.ID, true
	fmt.Fprintf(g.stderr, "bench: created poll %s (dedupe none) on %s\n", p.ID, g.cfg.URL)
	return nil
}

// total reads the poll's total.
func (g *Generator) total(ctx context.Context) (int64, error) {
	r, err := g.setup.Results(ctx, g.pollID)
	if err != nil {
		return 0, err
	}
	return r.Total, nil
}

// voter returns the voter id of the next vote.
func (g *Generator) voter() string {
	n := g.voterSeq.Add(1)
	if g.cfg.Voters > 0 {
		n %= uint64(g.cfg.Voters)
	}
	return fmt.Sprintf("%s-%d", g.runID, n)
}
