package loadgen

import (
	"context"
	"fmt"
	"time"
)

// The exactness check: after the run the poll's total is read until it
// stops moving, and what it gained must equal the votes answered 202.

// Exactness is the check that the poll counted exactly the accepted votes.
type Exactness struct {
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
func (g *Generator) checkExact(ctx context.Context, before, accepted, unknown int64) Exactness {
	x := Exactness{Accepted: accepted, Before: before, Unknown: unknown}
	after, settled, err := g.settle(ctx)
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
func (g *Generator) settle(ctx context.Context) (total int64, settled bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, settleDeadline)
	defer cancel()
	t := time.NewTicker(settleEvery)
	defer t.Stop()
	last, since := int64(-1), time.Now()
	for {
		cur, err := g.total(ctx)
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

// describe is the check's line in the summary for people.
func (x Exactness) describe(created, interrupted bool) string {
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
