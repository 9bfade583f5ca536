package ingest

import (
	"context"
	"fmt"
	"time"

	"github.com/pollcast/pollcast/votelog"
)

// The erasure of a deleted poll's votes, the part of it ingest owns: the
// poll's messages in the log and its voters in the registry. The caller
// (the web layer) marks the poll deleted in the catalog first, so that no
// new vote of it is admitted.

// PurgeMark publishes a purge mark of the poll in the log and returns its
// stream sequence: a reader of the log that has passed it holds nothing of
// the poll's earlier votes on its way (see votelog.PublishPurgeMark).
func (s *Service) PurgeMark(ctx context.Context, pollID string) (uint64, error) {
	seq, err := votelog.PublishPurgeMark(ctx, s.js, s.cfg.Shards, pollID, time.Now())
	if err != nil {
		return 0, fmt.Errorf("ingest: purge: %w", err)
	}
	return seq, nil
}

// PurgeLog removes a deleted poll's voters from the registry, then its
// votes from the log. The votes name the voters (the registry keys them by
// a keyed hash of poll and voter), so they leave the log last: a purge cut
// short between the two is run again whole. It is idempotent.
func (s *Service) PurgeLog(ctx context.Context, pollID string) error {
	var (
		dec  votelog.Decoder
		rec  votelog.Record
		keys []voterKey
	)
	err := votelog.EachOfPoll(ctx, s.js, s.cfg.Shards, pollID, func(data []byte) error {
		return dec.Each(&rec, data, func(_ int, err error) error {
			if err == nil && len(rec.Voter) == len(voterKey{}) {
				keys = append(keys, voterKey(rec.Voter))
			}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("ingest: purge: %w", err)
	}
	for len(keys) > 0 {
		n := min(len(keys), voterBatchLen)
		if err := s.voters.Forget(ctx, keys[:n]); err != nil {
			return fmt.Errorf("ingest: purge: %w", err)
		}
		keys = keys[n:]
	}
	if err := votelog.PurgePoll(ctx, s.js, s.cfg.Shards, pollID); err != nil {
		return fmt.Errorf("ingest: purge: %w", err)
	}
	return nil
}
