package ingest

import (
	"context"
	"net/netip"
	"slices"
	"time"

	"github.com/pollcast/pollcast/internal/retry"
	"github.com/pollcast/pollcast/poll"
	"github.com/pollcast/pollcast/votelog"
)

// vote is one vote on its way through admission.
type vote struct {
	key      voterKey
	remember bool // key goes to the registry once the vote is stored
	claimed  bool
	keyed    bool // holds its idempotency key's claim in the key registry
	stored   bool // already stored before this request: no publish, no wait
	id       voteID
	rec      votelog.Record
	subject  string
	msgID    string // its own message ID when published alone: set when the vote has an idempotency key
	ack      *logAck
	queue    *packQueue // the group commit queue it waits in, if it waited
	err      error
}

// prepare checks a vote, claims its voter, and makes its record in v; d
// carries what the previous vote of the same batch derived. It leaves the
// reason a vote is refused in v.err, and sets v.stored for a retry of a
// vote the log already holds.
func (s *Service) prepare(ctx context.Context, v *vote, req *Request, now time.Time, d *derived) {
	p, err := s.admit(ctx, req, now)
	if err != nil {
		v.err = err
		return
	}
	key, hasKey, err := s.voterKeyOf(p, req.Voter, req.ClientIP)
	if err != nil {
		v.err = err
		return
	}
	if v.id, err = s.voteIDFor(p.ID, req.IdempotencyKey); err != nil {
		v.err = err
		return
	}
	if hasKey {
		v.key, v.remember = key, remembers(p)
	}
	if req.IdempotencyKey != "" {
		if v.err = s.claimKey(ctx, v, now); v.err != nil || v.stored {
			return
		}
	}
	if p.Dedupe != poll.DedupeNone {
		if v.err = s.claimVoter(ctx, v, key); v.err != nil || v.stored {
			s.releaseKey(ctx, v)
			return
		}
	}
	s.makeRecord(v, req, p.ID, hasKey, now, d)
}

// admit checks everything that needs no identity: rate, poll, origin,
// status, options.
func (s *Service) admit(ctx context.Context, req *Request, now time.Time) (*poll.Poll, error) {
	if s.lim != nil && !req.Trusted && req.ClientIP.IsValid() {
		ok, wait, err := s.lim.Allow(ctx, clientPrefix(req.ClientIP))
		if err != nil {
			s.cfg.Logger.Warn("ingest: rate limit unavailable; letting the vote through", "err", err)
		}
		if !ok {
			return nil, &poll.Error{Code: poll.CodeRateLimited, Detail: "too many votes from this address; slow down", RetryAfter: wait}
		}
	}
	p, ok := s.cat.Fetch(ctx, req.PollID)
	if !ok {
		return nil, poll.Errorf(poll.ErrNotFound, "no poll %q", req.PollID)
	}
	if !p.OriginAllowed(req.Origin) {
		return nil, poll.Errorf(poll.ErrOriginNotAllowed, "origin %q may not vote in this poll", req.Origin)
	}
	switch p.StatusAt(now) {
	case poll.StatusScheduled:
		return nil, poll.Errorf(poll.ErrPollClosed, "the poll opens at %s", p.OpensAt.Format(time.RFC3339))
	case poll.StatusClosed:
		return nil, poll.Errorf(poll.ErrPollClosed, "the poll is closed")
	}
	return p, checkOptions(p, req.Options)
}

func checkOptions(p *poll.Poll, opts []string) error {
	switch {
	case len(opts) == 0:
		return poll.Errorf(poll.ErrInvalidOption, "choose at least one option")
	case p.Kind == poll.KindSingle && len(opts) != 1:
		return poll.Errorf(poll.ErrInvalidOption, "choose exactly one option")
	case len(opts) > p.MaxChoices:
		return poll.Errorf(poll.ErrInvalidOption, "choose at most %d options", p.MaxChoices)
	}
	for i, o := range opts {
		if _, ok := p.Option(o); !ok {
			return poll.Errorf(poll.ErrInvalidOption, "no option %q in this poll", truncate(o, 64))
		}
		if slices.Contains(opts[:i], o) {
			return poll.Errorf(poll.ErrInvalidOption, "option %q chosen twice", o)
		}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// claimVoter claims key for v in the registry, for a poll that
// deduplicates. It returns why the vote is refused, or nil with v.claimed
// set (publish it) or v.stored set (a retry of a stored vote: same answer,
// nothing to publish).
func (s *Service) claimVoter(ctx context.Context, v *vote, key voterKey) error {
	if !s.rebuilt.Load() {
		return overloaded("one-vote-per-voter is being rebuilt from the log; try again shortly")
	}
	res, err := s.voters.Claim(ctx, key, v.id)
	if err != nil {
		s.cfg.Logger.Warn("ingest: dedupe registry", "err", err)
		return overloaded("one-vote-per-voter cannot be checked right now")
	}
	switch res {
	case claimLost:
		signal(s.lost)
		return overloaded("one-vote-per-voter is being rebuilt from the log; try again shortly")
	case claimTaken:
		return poll.Errorf(poll.ErrAlreadyVoted, "this voter already voted in this poll")
	case claimStored:
		v.stored = true
		return nil
	}
	v.claimed = true
	return nil
}

// remembers reports whether the registry keeps the voters of p: those of
// polls that deduplicate (to refuse a second vote) and of polls that show
// results after a vote (to tell who voted). A poll that counts every vote
// and shows results to all has no use for them, and keeping them would
// cost CPU on every vote and memory for every voter.
func remembers(p *poll.Poll) bool {
	return p.Dedupe != poll.DedupeNone || p.ResultsVisibility == poll.VisibleAfterVote
}

// makeRecord makes the log record of an admitted vote of poll pollID and
// the subject it is published on.
func (s *Service) makeRecord(v *vote, req *Request, pollID string, hasKey bool, now time.Time, d *derived) {
	v.rec = votelog.Record{
		VoteID: v.id.String(), PollID: pollID, Options: req.Options, Time: now,
		Region: s.cfg.Region, Country: d.countryOf(req.ClientIP), Device: d.deviceOf(req.UserAgent), Referrer: req.Referrer,
	}
	if hasKey {
		v.rec.Voter = v.key[:]
	}
	v.subject = s.subjectOf(d, pollID)
	if req.IdempotencyKey != "" {
		v.msgID = v.rec.VoteID
		v.rec.Keyed = true
	}
}

// derived is what makeRecord derived from the last vote it saw: the votes
// of a batch mostly share their client, its user agent and their poll, so
// each is derived again only when it changes.
type derived struct {
	ua, device string
	ip         netip.Addr
	ipSeen     bool
	country    string
	pollID     string
	subject    string
}

func (d *derived) deviceOf(ua string) string {
	if d.device == "" || d.ua != ua {
		d.ua, d.device = ua, Device(ua)
	}
	return d.device
}

func (d *derived) countryOf(ip netip.Addr) string {
	if !d.ipSeen || d.ip != ip {
		d.ip, d.ipSeen, d.country = ip, true, Country(ip)
	}
	return d.country
}

func (s *Service) subjectOf(d *derived, pollID string) string {
	if d.subject == "" || d.pollID != pollID {
		d.pollID, d.subject = pollID, votelog.VoteSubject(votelog.Shard(pollID, s.cfg.Shards), pollID)
	}
	return d.subject
}

// claimKey claims the idempotency key of v (its vote ID) in the key
// registry. It returns why the vote is refused, or nil with v.keyed set
// (publish it) or v.stored set (a retry of a stored vote: same answer,
// nothing to publish). While another attempt of the key is on its way it
// waits for its outcome; if ctx ends first, the answer is errPending: that
// attempt may store the vote.
func (s *Service) claimKey(ctx context.Context, v *vote, now time.Time) error {
	b := retry.Backoff{Min: 2 * time.Millisecond, Max: 100 * time.Millisecond}
	for {
		st, err := s.keys.Claim(ctx, v.id, now)
		if err != nil {
			s.cfg.Logger.Warn("ingest: idempotency keys", "err", err)
			return overloaded("idempotency keys cannot be checked right now")
		}
		switch st {
		case keyClaimed:
			v.keyed = true
			return nil
		case keyStored:
			v.stored = true
			return nil
		case keyLost:
			signal(s.lost)
			return overloaded("idempotency keys are being rebuilt from the log; try again shortly")
		}
		if b.Wait(ctx) != nil {
			return errPending
		}
	}
}

// releaseKey frees the key claim of a vote refused before publishing.
func (s *Service) releaseKey(ctx context.Context, v *vote) {
	if !v.keyed {
		return
	}
	v.keyed = false
	if err := s.keys.Finish(ctx, v.id, time.Time{}, false); err != nil {
		s.cfg.Logger.Warn("ingest: release idempotency key", "err", err)
	}
}
