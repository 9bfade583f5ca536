package analytics

import (
	"context"
	"errors"
	"fmt"

	"github.com/pollcast/pollcast/votelog"
)

// A largest stored sequence past the end of the log means the log lost its
// tail: it was restored from an older backup, or it is a new log beside a
// store that copied an old one. The sink resumes after the largest stored
// sequence, so new votes at the sequences stored would be skipped. The rows
// past the log's end are removed instead (those at or below it are the
// same votes of the same log, kept), and the sink reads on from there:
// analytics equal the log again. The sink checks when it starts following
// the log and, while it runs, every SinkConfig.LogCheck (drain).
//
// The stored sequence is compared with an end read after it: a row stored
// is a message of the log, so a log that did not lose its tail always ends
// at or past it.
//
// Only sequences are compared: a log that lost its tail and then grew past
// the stored sequence before the sink looked is not told apart from the
// log the rows came from.

// errLogBehind restarts a sink that read past the log's end.
var errLogBehind = errors.New("analytics: the log ends before the votes read from it")

// TrimAhead removes the rows past the end of the log, as the sink does at
// each start of its reader. A process that also takes votes calls it before
// it serves: a new vote must not land at a sequence whose old row is kept.
func (s *Sink) TrimAhead(ctx context.Context) error {
	last, err := s.store.LastSeq(ctx)
	if err != nil {
		return fmt.Errorf("analytics: last seq: %w", err)
	}
	_, err = s.trimAhead(ctx, last)
	return err
}

// trimAhead removes the rows past the end of the log, read now, when last
// (the largest sequence stored) is past it, and returns the largest
// sequence then stored.
func (s *Sink) trimAhead(ctx context.Context, last uint64) (uint64, error) {
	end, err := votelog.LastSeq(ctx, s.js)
	if err != nil {
		return 0, fmt.Errorf("analytics: the log's end: %w", err)
	}
	if last <= end {
		return last, nil
	}
	s.log.Warn("analytics: the store holds votes past the end of the log, which lost its tail (restored from an older backup, or a new log beside an old store): removing them and copying the log again from its end on",
		"stored_last_seq", last, "log_last_seq", end)
	if err := s.untilStored(ctx, func(ctx context.Context) error { return s.store.DeleteAfter(ctx, end) }); err != nil {
		return 0, err
	}
	err = s.untilStored(ctx, func(ctx context.Context) (err error) {
		last, err = s.store.LastSeq(ctx)
		return err
	})
	return last, err
}

// behind returns errLogBehind when the log ends before read, the sequence
// of the newest message the sink read; nil when it does not, or when the
// log cannot tell now.
func (s *Sink) behind(ctx context.Context, read uint64) error {
	end, err := votelog.LastSeq(ctx, s.js)
	if err == nil && read > end {
		return fmt.Errorf("%w: read up to %d, the log ends at %d", errLogBehind, read, end)
	}
	return nil
}
