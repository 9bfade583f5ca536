package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pollcast/pollcast/poll"
	"github.com/pollcast/pollcast/votelog"
)

// Why the log refuses writes for want of room: the values of the reason
// label of pollcast_log_refusing, and the reason Ready names.
const (
	// RefusingStreamLimit: the VOTES stream is at its MaxBytes or MaxMsgs
	// (it discards new messages, never old votes).
	RefusingStreamLimit = "stream_limit"
	// RefusingAccountLimit: the NATS account's JetStream storage limit is
	// reached.
	RefusingAccountLimit = "account_limit"
	// RefusingServerStorage: the NATS server's JetStream storage
	// (max_file_store) is used up.
	RefusingServerStorage = "server_storage"
)

var refusingReasons = []string{RefusingStreamLimit, RefusingAccountLimit, RefusingServerStorage}

// advice says, per reason, what an operator does about it.
var advice = map[string]string{
	RefusingStreamLimit:   "the VOTES stream is at its size limit: raise its max bytes or free space",
	RefusingAccountLimit:  "the NATS account's JetStream storage limit is reached: raise it or free space",
	RefusingServerStorage: "the NATS server's JetStream storage is used up: free space or raise max_file_store",
}

// The JetStream API error codes of a write refused for want of room.
const (
	jsAccountResourcesExceeded = 10002
	jsInsufficientResources    = 10023
	jsStorageResourcesExceeded = 10047
	jsStreamStoreFailed        = 10077 // its description is the store's reason
)

// refusedFor returns why the log refused a write for want of room, or ""
// when err is no such refusal (a timeout, a message too large, no log).
func refusedFor(err error) string {
	var ae *jetstream.APIError
	if !errors.As(err, &ae) {
		return ""
	}
	switch ae.ErrorCode {
	case jsAccountResourcesExceeded:
		return RefusingAccountLimit
	case jsInsufficientResources, jsStorageResourcesExceeded:
		return RefusingServerStorage
	case jsStreamStoreFailed:
		if strings.Contains(ae.Description, "maximum bytes exceeded") || strings.Contains(ae.Description, "maximum messages") {
			return RefusingStreamLimit
		}
	}
	return ""
}

// logState is whether the log refuses writes, and why. It is set by the
// first refused write and cleared by the next stored one or by a probe
// (watchLog): a node that fails readiness gets no votes to learn from.
type logState struct {
	refusing atomic.Bool // the fast path of every stored vote

	mu     sync.Mutex
	reason string // "" while the log takes writes
	cause  string // the log's own words
	since  time.Time
	gauge  *prometheus.GaugeVec
}

func newLogState(reg prometheus.Registerer) (*logState, error) {
	l := &logState{gauge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "pollcast_log_refusing",
		Help: "1 while the vote log refuses writes for want of room, by reason (stream_limit, account_limit, server_storage).",
	}, []string{"reason"})}
	for _, r := range refusingReasons {
		l.gauge.WithLabelValues(r).Set(0)
	}
	if reg != nil {
		if err := reg.Register(l.gauge); err != nil {
			return nil, fmt.Errorf("ingest: metrics: %w", err)
		}
	}
	return l, nil
}

// refuse records that the log refuses writes for reason.
func (l *logState) refuse(log *slog.Logger, reason, cause string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.reason == reason {
		l.cause = cause
		return
	}
	if l.reason != "" {
		l.gauge.WithLabelValues(l.reason).Set(0)
	} else {
		l.since = time.Now()
	}
	l.reason, l.cause = reason, cause
	l.gauge.WithLabelValues(reason).Set(1)
	l.refusing.Store(true)
	log.Warn("ingest: the vote log refuses writes; votes get 503 and /readyz fails until it has room",
		"reason", reason, "advice", advice[reason], "err", cause)
}

// clear records that the log takes writes again.
func (l *logState) clear(log *slog.Logger, how string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.reason == "" {
		return
	}
	l.gauge.WithLabelValues(l.reason).Set(0)
	log.Info("ingest: the vote log takes writes again", "was", l.reason, "after", time.Since(l.since).Round(time.Millisecond), "by", how)
	l.reason, l.cause = "", ""
	l.refusing.Store(false)
}

// err returns Ready's error while the log refuses writes, nil otherwise.
func (l *logState) err() error {
	if !l.refusing.Load() {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.reason == "" {
		return nil
	}
	return fmt.Errorf("ingest: the vote log refuses writes (%s) since %s: %s (%s)",
		l.reason, l.since.UTC().Format(time.RFC3339), advice[l.reason], l.cause)
}

// noteLogAnswer learns from the log's answer to a message of votes: nil
// when stored.
func (s *Service) noteLogAnswer(err error) {
	if err == nil {
		if s.logs.refusing.Load() {
			s.logs.clear(s.cfg.Logger, "a stored vote")
		}
		return
	}
	if reason := refusedFor(err); reason != "" {
		s.logs.refuse(s.cfg.Logger, reason, err.Error())
	}
}

// notStored returns the answer to a vote the log did not store. A refusal
// for want of room is logged once, by the log state, not once a vote.
func (s *Service) notStored(err error) *poll.Error {
	if refusedFor(err) != "" {
		return overloaded("the vote log is full: it takes no votes until it has room")
	}
	s.cfg.Logger.Warn("ingest: vote not stored", "err", err)
	return overloaded("the vote log did not store the vote")
}

// watchLog probes the log every Config.LogProbe while it refuses writes,
// and clears the state once it has room again, until ctx ends.
func (s *Service) watchLog(ctx context.Context) {
	tick := time.NewTicker(s.cfg.LogProbe)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if !s.logs.refusing.Load() {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, s.cfg.PublishTimeout)
		reason, cause, err := s.probeLog(pctx)
		cancel()
		switch {
		case reason != "":
			s.logs.refuse(s.cfg.Logger, reason, cause)
		case err != nil:
			if ctx.Err() == nil {
				s.cfg.Logger.Debug("ingest: probe of the vote log", "err", err)
			}
		default:
			s.logs.clear(s.cfg.Logger, "a probe")
		}
	}
}

// probeRoom is the room the VOTES stream needs below its size limit to
// count as taking votes again: a few single votes.
const probeRoom = 4 << 10

// probeLog checks whether the log has room: the VOTES stream below its
// limits (read from its state, writing nothing to it), then a write to the
// probe stream, which the server and the account refuse as they refuse
// votes. It returns the reason the log still refuses writes, "" when it has
// room, or err when it could not tell.
func (s *Service) probeLog(ctx context.Context) (reason, cause string, err error) {
	st, err := s.js.Stream(ctx, votelog.StreamName)
	if err != nil {
		return "", "", fmt.Errorf("ingest: probe: %w", err)
	}
	info := st.CachedInfo()
	c, state := info.Config, info.State
	if c.Discard == jetstream.DiscardNew {
		if c.MaxBytes > 0 && int64(state.Bytes)+probeRoom > c.MaxBytes {
			return RefusingStreamLimit, fmt.Sprintf("the stream holds %d of its %d bytes", state.Bytes, c.MaxBytes), nil
		}
		if c.MaxMsgs > 0 && int64(state.Msgs) >= c.MaxMsgs {
			return RefusingStreamLimit, fmt.Sprintf("the stream holds %d of its %d messages", state.Msgs, c.MaxMsgs), nil
		}
	}
	if !s.probeMade.Load() {
		if _, err := votelog.EnsureProbe(ctx, s.js, c.Replicas); err != nil {
			if r := refusedFor(err); r != "" {
				return r, err.Error(), nil
			}
			return "", "", fmt.Errorf("ingest: probe: %w", err)
		}
		s.probeMade.Store(true)
	}
	if _, err := s.js.Publish(ctx, votelog.ProbeSubject, []byte("probe")); err != nil {
		if r := refusedFor(err); r != "" {
			return r, err.Error(), nil
		}
		return "", "", fmt.Errorf("ingest: probe: %w", err)
	}
	return "", "", nil
}
