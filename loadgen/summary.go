package loadgen

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Summary is the outcome of a run: Print writes it for people, WriteJSON
// as the JSON of `pollcast bench --json`.
type Summary struct {
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
	Latency    LatencySummary `json:"latency"`
	// VoteLatency is the request latency of the votes (viewers scenario).
	VoteLatency *LatencySummary  `json:"vote_latency,omitempty"`
	ErrorCodes  map[string]int64 `json:"error_codes"`
	// ConnectErrors counts connections that could not be opened or broke
	// (ws, viewers); FirstConnectError says why the first did.
	ConnectErrors     int64          `json:"connect_errors"`
	FirstConnectError string         `json:"first_connect_error,omitempty"`
	Viewers           *ViewerSummary `json:"viewers,omitempty"`
	Check             Exactness      `json:"exactness"`
	// Interrupted is true when the run was stopped early (its context
	// ended): the count was not checked.
	Interrupted bool `json:"interrupted,omitempty"`
	// Passed is true when the poll counted exactly the votes answered 202.
	Passed bool `json:"passed"`
}

// LatencySummary gives percentiles in milliseconds.
type LatencySummary struct {
	// Of is "request" (a vote or batch request to its answer) or
	// "vote_to_viewer" (a vote's 202 to a viewer seeing it counted).
	Of    string  `json:"of"`
	Count int64   `json:"count"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

func latencyOf(of string, h *histogram) LatencySummary {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return LatencySummary{Of: of, Count: h.Count(), P50: ms(h.Quantile(.5)), P90: ms(h.Quantile(.9)),
		P99: ms(h.Quantile(.99)), Max: ms(h.Max())}
}

func (g *Generator) summary(elapsed time.Duration) *Summary {
	s := &Summary{
		Scenario: g.cfg.Scenario, URL: g.cfg.URL, PollID: g.pollID, CreatedPoll: g.created,
		DurationS: elapsed.Seconds(), Concurrency: g.cfg.Concurrency, TargetRate: g.cfg.Rate,
		Behind: g.pace.behind(), Sent: g.st.sent.Load(), OK: g.st.ok.Load(), Errors: g.st.failed.Load(),
		Unknown: g.st.unknown.Load(), ErrorCodes: g.st.codeCounts(), Latency: latencyOf("request", g.st.lat),
	}
	s.ConnectErrors, s.FirstConnectError = g.st.connErrorCounts()
	if elapsed > 0 {
		s.Throughput = float64(s.OK) / elapsed.Seconds()
	}
	if g.viewers != nil {
		s.Viewers = g.viewers.summary()
		votes := s.Latency
		s.VoteLatency = &votes
		s.Latency = latencyOf("vote_to_viewer", g.viewers.lat)
	}
	return s
}

// WriteJSON writes the summary as indented JSON.
func (s *Summary) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(s)
}

// Print writes the summary for people.
func (s *Summary) Print(w io.Writer) error {
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
