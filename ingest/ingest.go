package ingest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
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
	// PublishTimeout bounds the wait for the log's acknowledgement of one
	// attempt; past it the outcome is learned by publishing the message
	// again (see resolve.go). Zero value means 5s.
	PublishTimeout time.Duration
	// MaxPending caps the votes awaiting the log's acknowledgement; past it
	// votes are answered 503 overloaded instead of queueing. Zero value means 16384.
	MaxPending int
	// Voters is the dedupe registry. Zero value means a MemoryVoters,
	// rebuilt from the log by Rebuild; use RedisVoters to share it between
	// ingest nodes.
	Voters Voters
	// Keys is the registry of idempotency keys. Zero value means a
	// MemoryKeys with the default window, rebuilt from the log with the
	// voters; use RedisKeys with RedisVoters.
	Keys Keys
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
	// MaxTokenTTL is how far ahead of now a voter token's exp may lie; a
	// token without exp, or with exp further ahead, is refused, so that a
	// leaked token stops working in bounded time. Zero value means 24h.
	MaxTokenTTL time.Duration
	// LogProbe is how often, while the log refuses writes for want of room,
	// ingest checks whether it has room again (logstate.go). Zero value means 1s.
	LogProbe time.Duration
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
	keys    Keys
	lim     Limiter
	hash    *hasher
	cfg     Config
	m       *metrics
	rebuilt atomic.Bool
	lost    chan struct{} // a claim found the registry lost: check it now
	gc      *committer    // group commit of every vote

	logs      *logState   // whether the log refuses writes (logstate.go)
	probeMade atomic.Bool // the probe stream exists

	rememberMu sync.Mutex
	remembered []voterVote // Remember's buffer, reused

	dupWindow  atomic.Int64 // the stream's duplicate window, read at Rebuild
	claimsOnce sync.Once    // starts commitClaims
	abandon    bool         // tests: leave claims of stored votes pending, as a crash would

	life   context.Context // ends with Close: background work stops
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
	cfg.MaxTokenTTL = cmp.Or(cfg.MaxTokenTTL, DefaultMaxTokenTTL)
	cfg.LogProbe = cmp.Or(cfg.LogProbe, time.Second)
	if cfg.Voters == nil {
		cfg.Voters = NewMemoryVoters()
	}
	if cfg.Keys == nil {
		cfg.Keys = NewMemoryKeys(KeysConfig{})
	}
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	if cfg.VoteRate < 0 {
		return nil, errors.New("ingest: negative vote rate")
	}
	if cfg.MaxTokenTTL < 0 {
		return nil, errors.New("ingest: negative voter token lifetime")
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
	logs, err := newLogState(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{nc: nc, js: js, cat: cat, voters: cfg.Voters, keys: cfg.Keys, hash: newHasher(secret), cfg: cfg, m: m, life: ctx, cancel: cancel,
		lost: make(chan struct{}, 1), logs: logs}
	s.gc = newCommitter(ctx, s)
	s.wg.Go(func() { s.watchLog(ctx) })
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
	s.gc.close()
	s.cancel()
	s.wg.Wait()
}

// Vote admits one vote: it returns once the log stored it, or the reason it
// was refused as a *poll.Error (API.md's codes).
func (s *Service) Vote(ctx context.Context, req Request) (Accepted, error) {
	v := s.start(ctx, &req, time.Now())
	s.gc.wait(ctx, v)
	s.await(ctx, v)
	s.observe(v.err)
	return Accepted{VoteID: v.id.String(), PollID: req.PollID}, v.err
}

// start checks a vote and publishes it without waiting for the ack.
func (s *Service) start(ctx context.Context, req *Request, now time.Time) *vote {
	v := &vote{}
	s.prepare(ctx, v, req, now, &derived{})
	if v.err == nil && !v.stored {
		s.gc.submit(ctx, v.rec.PollID, []*vote{v})
	}
	return v
}

// VoteBatch admits a batch of votes, publishing them together and waiting
// for all acknowledgements; outcomes are in request order.
//
// The votes of one poll go to the log as one message (a pack, up to
// votelog.MaxPack votes), with the other votes of the poll waiting at that
// moment (group commit): the log's cost is per message. A pack is stored
// or not as a whole, and so are the answers to its votes. Votes with an
// idempotency key share packs too: the key registry recognises their
// retries, and a key used twice in one batch is one vote, answered twice.
func (s *Service) VoteBatch(ctx context.Context, reqs []Request) []Outcome {
	now := time.Now()
	votes := make([]vote, len(reqs))
	var (
		packs packer
		d     derived
		same  map[voteID]int // a keyed vote's first place in the batch
		first []int          // first[i] = j: vote i is vote j again, j < i
	)
	for i := range reqs {
		v := &votes[i]
		if reqs[i].IdempotencyKey != "" {
			if id, err := s.voteIDFor(reqs[i].PollID, reqs[i].IdempotencyKey); err == nil {
				if j, ok := same[id]; ok {
					if first == nil {
						first = make([]int, len(reqs))
					}
					first[i] = j + 1
					continue
				}
				if same == nil {
					same = map[voteID]int{}
				}
				same[id] = i
			}
		}
		s.prepare(ctx, v, &reqs[i], now, &d)
		if v.err == nil && !v.stored {
			packs.add(v)
		}
	}
	s.publishPacks(ctx, &packs)
	out := make([]Outcome, len(reqs))
	for i := range votes {
		if first != nil && first[i] > 0 {
			out[i] = out[first[i]-1]
			s.observe(out[i].Err)
			continue
		}
		v := &votes[i]
		s.gc.wait(ctx, v)
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

// Ready reports whether votes can be admitted: the rebuild is done and the
// log answers and takes writes.
func (s *Service) Ready(ctx context.Context) error {
	if err := s.logs.err(); err != nil {
		return err
	}
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
