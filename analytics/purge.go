package analytics

import (
	"context"
	"fmt"
	"time"

	"github.com/pollcast/pollcast/internal/retry"
)

// WaitPassed returns once the store holds the rows of the log up to
// sequence seq, its LastSeq at least seq, or when ctx ends. The sink stores
// whole messages in log order, so once a store has passed a poll's purge
// mark (votelog.PublishPurgeMark), the sink holds no row of the poll's
// earlier votes on its way, and DeletePoll removes them for good.
func WaitPassed(ctx context.Context, s Store, seq uint64) error {
	wait := retry.Backoff{Min: 20 * time.Millisecond, Max: 250 * time.Millisecond}
	for {
		last, err := s.LastSeq(ctx)
		if err == nil && last >= seq {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("stored up to %d", last)
		}
		if werr := retry.Sleep(ctx, wait.Next()); werr != nil {
			return fmt.Errorf("analytics: waiting for the sink to store sequence %d: %w (%v)", seq, werr, err)
		}
	}
}
