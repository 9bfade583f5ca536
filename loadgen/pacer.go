package loadgen

import (
	"context"
	"sync/atomic"
	"time"
)

// pacer hands out the right to send one unit (a vote, a batch request of
// several votes) at a target rate, open loop: when the senders fall
// behind, what is due piles up and they catch up as fast as they can;
// behind says how many votes are still due. A nil pacer lets everything
// through.
type pacer struct {
	rate   float64 // units/s
	unit   int64   // votes a unit
	tokens chan struct{}
	due    atomic.Int64
	taken  atomic.Int64
}

// pacerTick is how often the pacer releases what became due.
const pacerTick = 5 * time.Millisecond

// newPacer returns a pacer of votesPerSec votes a second, unit votes at a
// time, for senders senders; nil when votesPerSec is 0.
func newPacer(votesPerSec float64, unit, senders int) *pacer {
	if votesPerSec <= 0 {
		return nil
	}
	rate := votesPerSec / float64(unit)
	return &pacer{rate: rate, unit: int64(unit), tokens: make(chan struct{}, max(senders, int(rate*pacerTick.Seconds())+1))}
}

// run releases units as they become due until ctx ends.
func (p *pacer) run(ctx context.Context) {
	if p == nil {
		return
	}
	start := time.Now()
	t := time.NewTicker(pacerTick)
	defer t.Stop()
	released := int64(0)
	for {
		due := int64(p.rate * time.Since(start).Seconds())
		p.due.Store(due)
	release:
		for ; released < due; released++ {
			select {
			case p.tokens <- struct{}{}:
			default:
				break release // the senders are busy: it stays due
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// wait takes the right to send one unit; false once ctx ended.
func (p *pacer) wait(ctx context.Context) bool {
	if ctx.Err() != nil {
		return false
	}
	if p == nil {
		return true
	}
	select {
	case <-ctx.Done():
		return false
	case <-p.tokens:
		p.taken.Add(1)
		return true
	}
}

// take takes the right to send one more unit if it is due now, without
// waiting; it reports whether it did.
func (p *pacer) take() bool {
	if p == nil {
		return true
	}
	select {
	case <-p.tokens:
		p.taken.Add(1)
		return true
	default:
		return false
	}
}

// behind returns how many votes were due but not sent.
func (p *pacer) behind() int64 {
	if p == nil {
		return 0
	}
	return max(p.due.Load()-p.taken.Load(), 0) * p.unit
}
