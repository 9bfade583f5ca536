package ingest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pollcast/pollcast/poll"
	"github.com/pollcast/pollcast/votelog"
)

// Config configures New.
type Config struct {
	// Shards is the number of tally shards votes are spread over. It must
	// match the tally's. Zero value means votelog.DefaultShards.
	Shards int
	// VoteRate is the per-client vote rate limit in votes/s, with bursts of
	// 4× that. Zero value means no limit.
	VoteRate float64
	// Limiter enforces VoteRate. Zero value means a MemoryLimiter; use a
	// RedisLimiter to share the limit between ingest nodes.
	Limiter Limiter
	// PublishTimeout bounds the wait for the log's acknowledgement; past it
	// the vote is answered 503 overloaded. Zero value means 5s.
	PublishTimeout time.Duration
	// MaxPending caps the votes awaiting the log's acknowledgement; past it
	// votes are answered 503 overloaded instead of queueing. Zero value means 16384.
	MaxPending int
	// Voters is the dedupe registry. Zero value means a MemoryVoters,
	// rebuilt from the log by Rebuild; use RedisVoters to share it between
	// ingest nodes.
	Voters Voters
	// Region tags every vote with the deployment region of this node. Zero value means "local".
	Region string
	// Logger receives operational messages. Zero value means slog.Default().
	Logger *slog.Logger
	// Registerer receives the ingest metrics. Zero value means no metrics.
	Registerer prometheus.Registerer
	// VotersCheck is how often a durable registry is checked for lost data
	// (Voters.Complete). Zero value means 1s.
	VotersCheck time.Duration
	// Voted reports whether a voter key has a counted vote in a poll: the
	// tally's voter set (tally.Store.HasVoter). The registry keeps no
	// voters of a poll that counts every vote and shows results to all
	// (see remembers); should such a poll come to show results only after
	// a vote, HasVoted asks Voted about the votes before. Zero value means
	// such voters count as not having voted.
	Voted func(ctx context.Context, pollID string, voter [16]byte) (bool, error)
}

// Request is one vote as a client sent it, with what the transport knows
// about the client.
type Request struct {
	PollID         string
	Options        []string
	Voter          string
	IdempotencyKey string
	// ClientIP is the client's address (after trusted proxies). Used for
	// rate limits and the ip dedupe policy; never stored in the clear.
	ClientIP netip.Addr
	// Origin is the browser's Origin header, checked against the poll's
	// allowed origins. Empty for non-browser clients.
	Origin string
	// Referrer is the host of the page the poll is embedded on, if known.
	Referrer string
	// UserAgent is the client's User-Agent header: the vote's device class
	// (desktop, mobile, tablet, bot, other) is derived from it.
	UserAgent string
	// Trusted skips the per-client rate limit: authenticated server-side batches.
	Trusted bool
}

// Accepted is the answer to a vote the log stored.
type Accepted struct {
	VoteID string `json:"vote_id"`
	PollID string `json:"poll_id"`
}

// Outcome is the answer to one vote of a batch: Err is nil when accepted.
type Outcome struct {
	Accepted
	Err error
}

// Service admits votes. It is safe for concurrent use.
type Service struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	cat     *poll.Catalog
	voters  Voters
	lim     Limiter
	hash    *hasher
	cfg     Config
	m       *metrics
	rebuilt atomic.Bool
	lost    chan struct{} // a claim found the registry lost: check it now

	rememberMu sync.Mutex
	remembered []voterVote // Remember's buffer, reused

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns a vote admission service publishing through nc. Call Rebuild
// before serving votes.
func New(nc *nats.Conn, cat *poll.Catalog, cfg Config) (*Service, error) {
	cfg.Shards = cmp.Or(cfg.Shards, votelog.DefaultShards)
	cfg.PublishTimeout = cmp.Or(cfg.PublishTimeout, 5*time.Second)
	cfg.MaxPending = cmp.Or(cfg.MaxPending, 16384)
	cfg.Region = cmp.Or(cfg.Region, "local")
	cfg.VotersCheck = cmp.Or(cfg.VotersCheck, time.Second)
	if cfg.Voters == nil {
		cfg.Voters = NewMemoryVoters()
	}
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	if cfg.VoteRate < 0 {
		return nil, errors.New("ingest: negative vote rate")
	}
	secret := cat.Secret()
	if len(secret) == 0 {
		return nil, errors.New("ingest: catalog has no server secret")
	}
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(cfg.MaxPending),
		jetstream.WithPublishAsyncTimeout(cfg.PublishTimeout))
	if err != nil {
		return nil, fmt.Errorf("ingest: jetstream: %w", err)
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{nc: nc, js: js, cat: cat, voters: cfg.Voters, hash: newHasher(secret), cfg: cfg, m: m, cancel: cancel,
		lost: make(chan struct{}, 1)}
	if cfg.Voters.Durable() {
		s.wg.Go(func() { s.watchVoters(ctx) })
	}
	if cfg.VoteRate > 0 {
		s.lim = cfg.Limiter
		if s.lim == nil {
			mem := NewMemoryLimiter(cfg.VoteRate)
			s.wg.Go(func() { mem.run(ctx) })
			s.lim = mem
		}
	}
	return s, nil
}

// Close stops the service's background work. In-flight votes finish.
func (s *Service) Close() {
	s.cancel()
	s.wg.Wait()
}

// Rebuild reads the whole log once and remembers every voter in it, so that
// one-voter-one-vote holds across restarts. Votes must not be admitted
// before it returns.
func (s *Service) Rebuild(ctx context.Context) error {
	return s.RebuildAfter(ctx, 0)
}

// RebuildAfter is Rebuild for a process that already fed the log up to
// stream sequence seen to Remember (the tally's start-up read, so that the
// log is read once): it reads only what follows.
func (s *Service) RebuildAfter(ctx context.Context, seen uint64) error {
	if s.voters.Durable() {
		complete, err := s.voters.Complete(ctx)
		if err != nil {
			return fmt.Errorf("ingest: rebuild: %w", err)
		}
		if !complete {
			if err := s.rebuildDurable(ctx, false); err != nil {
				return err
			}
		}
		s.rebuilt.Store(true) // the registry outlived the last process, or is rebuilt
		return nil
	}
	if _, err := s.readVoters(ctx, seen); err != nil {
		return err
	}
	s.rebuilt.Store(true)
	return nil
}

// rebuildDurable refills a durable registry that lost its data from the
// whole log, then marks it complete. With settle, it first waits out the
// votes claimed before the loss and still on their way to the log (at most
// PublishTimeout: claims are refused meanwhile), and reads what they added:
// otherwise such a vote's voter could vote again in between.
func (s *Service) rebuildDurable(ctx context.Context, settle bool) error {
	start := time.Now()
	last, err := s.readVoters(ctx, 0)
	if err != nil {
		return err
	}
	if settle {
		t := time.NewTimer(s.cfg.PublishTimeout + time.Second)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return fmt.Errorf("ingest: rebuild: %w", ctx.Err())
		case <-t.C:
		}
		if _, err := s.readVoters(ctx, last); err != nil {
			return err
		}
	}
	if err := s.voters.MarkComplete(ctx); err != nil {
		return fmt.Errorf("ingest: rebuild: %w", err)
	}
	s.cfg.Logger.Info("ingest: voter registry rebuilt from the log", "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// watchVoters checks a durable registry every VotersCheck, and at once when
// a claim found it lost; when it lost its data, votes of deduplicated polls
// are refused (503) until it is rebuilt from the log, so that nobody votes
// twice through the gap.
func (s *Service) watchVoters(ctx context.Context) {
	t := time.NewTicker(s.cfg.VotersCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.lost:
		}
		if !s.rebuilt.Load() {
			continue // the start-up rebuild has not run yet
		}
		complete, err := s.voters.Complete(ctx)
		if err != nil || complete {
			continue // an unreachable registry refuses claims by itself
		}
		s.rebuilt.Store(false)
		s.cfg.Logger.Warn("ingest: the voter registry lost its data; rebuilding it from the log, votes of deduplicated polls wait")
		for {
			err := s.rebuildDurable(ctx, true)
			if err == nil {
				break
			}
			s.cfg.Logger.Warn("ingest: voter registry rebuild failed; retrying", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
		s.rebuilt.Store(true)
	}
}

// rebuildIdle ends a rebuild that gets no message for that long with an
// error, rather than wait forever for a message that was deleted.
const rebuildIdle = 10 * time.Second

// readVoters records the voter of every vote of the log after sequence
// seen in the registry, up to the end of the log as it was when called,
// which it returns.
func (s *Service) readVoters(ctx context.Context, seen uint64) (uint64, error) {
	last, err := votelog.LastSeq(ctx, s.js)
	if err != nil {
		return 0, fmt.Errorf("ingest: rebuild: %w", err)
	}
	if last <= seen {
		return seen, nil
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{"votes.>"}, DeliverPolicy: jetstream.DeliverAllPolicy}
	if seen > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, seen+1
	}
	cons, err := s.js.OrderedConsumer(ctx, votelog.StreamName, cfg)
	if err != nil {
		return 0, fmt.Errorf("ingest: rebuild: consumer: %w", err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(8192))
	if err != nil {
		return 0, fmt.Errorf("ingest: rebuild: %w", err)
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	var (
		at  uint64
		dec votelog.Decoder
		rec votelog.Record
	)
	batch := make([]voterVote, 0, 1024) // one round trip each to a Redis registry
	var rule pollRule
	for {
		msg, err := it.Next(jetstream.NextMaxWait(rebuildIdle))
		if err != nil {
			if ctx.Err() != nil {
				return 0, fmt.Errorf("ingest: rebuild: %w", ctx.Err())
			}
			return 0, fmt.Errorf("ingest: rebuild: at sequence %d of %d: %w", at, last, err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			return 0, fmt.Errorf("ingest: rebuild: %w", err)
		}
		_ = dec.Each(&rec, msg.Data(), func(_ int, err error) error {
			if k, id, ok := s.voterOf(&rec, &rule); err == nil && ok {
				batch = append(batch, voterVote{k, id})
			}
			return nil
		})
		at = meta.Sequence.Stream
		// Done at the end as it was, or earlier when the rest was deleted.
		done := at >= last || meta.NumPending == 0
		if len(batch) >= 1024 || (done && len(batch) > 0) {
			if err := s.voters.RecordMany(ctx, batch); err != nil {
				return 0, fmt.Errorf("ingest: rebuild: %w", err)
			}
			batch = batch[:0]
		}
		if done {
			return last, nil
		}
	}
}

// Remember records the voters of logged votes, given in log order, in a
// registry that does not outlive the process: a reader of the log that
// this process runs anyway (the tally's start-up read) calls it, so that
// RebuildAfter has only the rest to read. more is a hint: how many votes of
// the log follow these, for which the registry may make room at once. The
// records are not kept.
func (s *Service) Remember(ctx context.Context, rs []*votelog.Record, more uint64) error {
	if s.voters.Durable() || len(rs) == 0 {
		return nil
	}
	if r, ok := s.voters.(reserver); ok {
		r.reserve(uint64(len(rs)) + more)
	}
	s.rememberMu.Lock()
	defer s.rememberMu.Unlock()
	vs := s.remembered[:0]
	var rule pollRule
	for _, r := range rs {
		if k, id, ok := s.voterOf(r, &rule); ok {
			vs = append(vs, voterVote{k, id})
		}
	}
	s.remembered = vs
	return s.voters.RecordMany(ctx, vs)
}

// Vote admits one vote: it returns once the log stored it, or the reason it
// was refused as a *poll.Error (API.md's codes).
func (s *Service) Vote(ctx context.Context, req Request) (Accepted, error) {
	v := s.start(ctx, &req, time.Now())
	s.await(ctx, v)
	s.observe(v.err)
	return Accepted{VoteID: v.id.String(), PollID: req.PollID}, v.err
}

// VoteBatch admits a batch of votes, publishing them together and waiting
// for all acknowledgements; outcomes are in request order.
//
// The votes of one poll that carry no idempotency key go to the log as one
// message (a pack, up to votelog.MaxPack votes): the log's cost is per
// message. A vote with a key is a message of its own, whose ID lets the
// log recognise a retry; a keyless vote has a new ID whatever happens, so
// there is no retry to recognise, packed or not. A pack is stored or not
// as a whole, and so are the answers to its votes.
func (s *Service) VoteBatch(ctx context.Context, reqs []Request) []Outcome {
	now := time.Now()
	votes := make([]vote, len(reqs))
	var (
		packs map[string][]*vote // keyless votes by poll, waiting to be packed
		order []string           // the polls of packs, as they came
		d     derived
	)
	for i := range reqs {
		v := &votes[i]
		s.prepare(ctx, v, &reqs[i], now, &d)
		switch {
		case v.err != nil || v.stored:
		case v.msgID != "":
			s.publish(ctx, []*vote{v})
		default:
			if packs == nil {
				packs = map[string][]*vote{}
			}
			id := v.rec.PollID
			if _, ok := packs[id]; !ok {
				order = append(order, id)
			}
			packs[id] = append(packs[id], v)
		}
	}
	for _, id := range order {
		for vs := packs[id]; len(vs) > 0; {
			n := packLen(vs)
			s.publish(ctx, vs[:n])
			vs = vs[n:]
		}
	}
	out := make([]Outcome, len(reqs))
	for i := range votes {
		v := &votes[i]
		s.await(ctx, v)
		s.observe(v.err)
		id := v.rec.VoteID // the ID's text, made once
		if id == "" {
			id = v.id.String()
		}
		out[i] = Outcome{Accepted: Accepted{VoteID: id, PollID: reqs[i].PollID}, Err: v.err}
	}
	return out
}

// maxPackBytes bounds the encoding of a pack, well under the 1 MiB a NATS
// message may hold by default.
const maxPackBytes = 256 << 10

// packLen returns how many of vs, from the first, go in one message.
func packLen(vs []*vote) int {
	size := 0
	for i, v := range vs {
		size += v.rec.Size()
		if i == votelog.MaxPack || (i > 0 && size > maxPackBytes) {
			return i
		}
	}
	return len(vs)
}

// vote is one vote on its way through admission.
type vote struct {
	key      voterKey
	remember bool // key goes to the registry once the vote is stored
	claimed  bool
	stored   bool // already stored before this request: no publish, no wait
	id       voteID
	rec      votelog.Record
	subject  string
	msgID    string // for the log to recognise a retry: set when the vote has an idempotency key
	ack      *logAck
	err      error
}

// logAck is the log's answer to one message, which every vote in it waits
// for. The future yields it once: the waiter that takes it shares it with
// the others through done.
type logAck struct {
	fut    jetstream.PubAckFuture
	done   chan struct{}
	stored bool
	err    error // why it was not stored
}

// wait waits for the answer until stop is closed, and reports whether it
// came.
func (a *logAck) wait(stop <-chan struct{}) bool {
	select {
	case <-a.done:
	case <-a.fut.Ok():
		a.stored = true
		close(a.done)
	case err := <-a.fut.Err():
		a.err = err
		close(a.done)
	case <-stop:
		return false
	}
	return true
}

// start checks a vote and publishes it without waiting for the ack.
func (s *Service) start(ctx context.Context, req *Request, now time.Time) *vote {
	v := &vote{}
	s.prepare(ctx, v, req, now, &derived{})
	if v.err == nil && !v.stored {
		s.publish(ctx, []*vote{v})
	}
	return v
}

// derived is what prepare derived from the last vote it saw: the votes of
// a batch mostly share their client, its user agent and their poll, and
// deriving these anew took a fifth of admitting a vote (pprof).
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

// prepare checks a vote, claims its voter, and makes its record in v; d
// carries what the previous vote of the same batch derived.
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
	if p.Dedupe != poll.DedupeNone {
		if !s.rebuilt.Load() {
			v.err = overloaded("one-vote-per-voter is being rebuilt from the log; try again shortly")
			return
		}
		res, err := s.voters.Claim(ctx, key, v.id)
		if err != nil {
			s.cfg.Logger.Warn("ingest: dedupe registry", "err", err)
			v.err = overloaded("one-vote-per-voter cannot be checked right now")
			return
		}
		switch res {
		case claimLost:
			signal(s.lost)
			v.err = overloaded("one-vote-per-voter is being rebuilt from the log; try again shortly")
			return
		case claimTaken:
			v.err = poll.Errorf(poll.ErrAlreadyVoted, "this voter already voted in this poll")
			return
		case claimStored:
			v.stored = true // a retry of a stored vote: same answer, nothing to publish
			return
		}
		v.claimed = true
	}
	v.rec = votelog.Record{
		VoteID: v.id.String(), PollID: p.ID, Options: req.Options, Time: now,
		Region: s.cfg.Region, Country: d.countryOf(req.ClientIP), Device: d.deviceOf(req.UserAgent), Referrer: req.Referrer,
	}
	if hasKey {
		v.rec.Voter = v.key[:]
	}
	v.subject = s.subjectOf(d, p.ID)
	if req.IdempotencyKey != "" {
		v.msgID = v.rec.VoteID
	}
}

// publish sends prepared votes of one poll to the log as one message
// without waiting for the ack: they share its future.
func (s *Service) publish(ctx context.Context, vs []*vote) {
	var data []byte
	if len(vs) == 1 {
		data = vs[0].rec.Append(make([]byte, 0, vs[0].rec.Size()))
	} else {
		recs := make([]votelog.Record, len(vs))
		size := 0
		for i, v := range vs {
			recs[i] = v.rec
			size += v.rec.Size()
		}
		data = votelog.AppendMessage(make([]byte, 0, size+8), recs)
	}
	msg := &nats.Msg{Subject: vs[0].subject, Data: data}
	var opts []jetstream.PublishOpt
	if len(vs) == 1 && vs[0].msgID != "" {
		opts = append(opts, jetstream.WithMsgID(vs[0].msgID))
	}
	fail := func(err *poll.Error) {
		for _, v := range vs {
			v.err = err
			s.finish(ctx, v, false)
		}
	}
	if s.nc.Status() != nats.CONNECTED {
		fail(overloaded("the vote log is unreachable"))
		return
	}
	fut, err := s.js.PublishMsgAsync(msg, opts...)
	if err != nil {
		s.cfg.Logger.Warn("ingest: publish", "err", err)
		fail(overloaded("the vote log is not keeping up"))
		return
	}
	ack := &logAck{fut: fut, done: make(chan struct{})}
	for _, v := range vs {
		v.ack = ack
	}
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

// await waits for the log's acknowledgement of a started vote.
func (s *Service) await(ctx context.Context, v *vote) {
	if v.err != nil || v.stored {
		return
	}
	if !v.ack.wait(ctx.Done()) {
		// The vote may still be stored: the client retries with its
		// idempotency key and gets the same answer. Its claim is settled
		// by the log's own answer, not released now: a release would let
		// the voter vote again while this vote is still landing.
		v.err = overloaded("gave up waiting for the vote log")
		s.wg.Go(func() { s.settleLater(v) })
		return
	}
	if !v.ack.stored {
		s.cfg.Logger.Warn("ingest: vote not stored", "err", v.ack.err)
		v.err = overloaded("the vote log did not store the vote")
	}
	s.finish(ctx, v, v.ack.stored)
}

// settleLater settles the claim of a vote nobody waits for any more, once
// the log answers, or as not stored when it has not after PublishTimeout
// (the publish itself has timed out by then).
func (s *Service) settleLater(v *vote) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.PublishTimeout+time.Second)
	defer cancel()
	stored := v.ack.wait(ctx.Done()) && v.ack.stored
	s.finish(context.Background(), v, stored)
}

// finish settles the voter's claim once the outcome is known. A registry
// error here is logged: the vote's answer is already decided by the log,
// and a pending claim expires by itself.
func (s *Service) finish(ctx context.Context, v *vote, stored bool) {
	var err error
	switch {
	case v.claimed:
		err = s.voters.Finish(ctx, v.key, v.id, stored)
	case stored && v.remember:
		err = s.voters.Record(ctx, v.key, v.id)
	}
	if err != nil {
		s.cfg.Logger.Warn("ingest: settle voter claim", "err", err)
	}
}

// HasVoted reports whether the voter identified by voter (device id or
// voter token) or by ip has a stored vote in the poll: it decides
// after_vote visibility.
func (s *Service) HasVoted(ctx context.Context, p *poll.Poll, voter string, ip netip.Addr) bool {
	key, ok, err := s.voterKeyOf(p, voter, ip)
	if err != nil || !ok {
		return false
	}
	voted, err := s.voters.Voted(ctx, key)
	if err == nil && !voted && p.Dedupe == poll.DedupeNone && s.cfg.Voted != nil {
		// Its voters may have come while the registry did not keep them.
		voted, err = s.cfg.Voted(ctx, p.ID, key)
	}
	return err == nil && voted
}

// remembers reports whether the registry keeps the voters of p: those of
// polls that deduplicate (to refuse a second vote) and of polls that show
// results after a vote (to tell who voted). A poll that counts every vote
// and shows results to all has no use for them: keeping them cost an
// eighth of the server's CPU under batch votes (pprof) and 43 to 85 bytes
// a vote.
func remembers(p *poll.Poll) bool {
	return p.Dedupe != poll.DedupeNone || p.ResultsVisibility == poll.VisibleAfterVote
}

// pollRule caches whether the registry keeps the voters of the poll of the
// logged votes read last: the votes of a pack, and of a burst, share a poll.
type pollRule struct {
	id   string
	keep bool
}

// voterOf returns the voter and vote ID of a logged vote that the registry
// keeps: it has a voter, it was written by ingest (no retry can name
// another's vote), and its poll's voters are kept (a poll the catalog does
// not know, or no longer knows, is kept: better kept than missed).
func (s *Service) voterOf(r *votelog.Record, rule *pollRule) (voterKey, voteID, bool) {
	if len(r.Voter) != len(voterKey{}) {
		return voterKey{}, voteID{}, false
	}
	if r.PollID != rule.id {
		p, ok := s.cat.Poll(r.PollID)
		rule.id, rule.keep = r.PollID, !ok || remembers(p)
	}
	if !rule.keep {
		return voterKey{}, voteID{}, false
	}
	id, err := parseVoteID(r.VoteID)
	if err != nil {
		return voterKey{}, voteID{}, false
	}
	return voterKey(r.Voter), id, true
}

// Ready reports whether votes can be admitted: the rebuild is done and the
// log answers.
func (s *Service) Ready(ctx context.Context) error {
	if !s.rebuilt.Load() {
		return errors.New("ingest: rebuilding voters from the log")
	}
	if s.nc.Status() != nats.CONNECTED {
		return errors.New("ingest: not connected to NATS")
	}
	if _, err := s.js.Stream(ctx, votelog.StreamName); err != nil {
		return fmt.Errorf("ingest: log: %w", err)
	}
	return nil
}

func overloaded(detail string) *poll.Error {
	return &poll.Error{Code: poll.CodeOverloaded, Detail: detail, RetryAfter: time.Second}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// signal leaves a token in a 1-buffered channel unless one is there.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
