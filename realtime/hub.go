package realtime

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pollcast/pollcast/poll"
	"github.com/pollcast/pollcast/votelog"
)

// CountsFunc returns the current counts of a poll (from the tally store).
// The hub calls it when a viewer connects and every HubConfig.ResyncInterval
// for each followed poll, with a context bounded by HubConfig.WriteTimeout.
type CountsFunc func(ctx context.Context, pollID string) (poll.Counts, error)

// VoteMessage is a vote sent over a live socket.
type VoteMessage struct {
	Ref            string   `json:"ref"`
	Options        []string `json:"options"`
	Voter          string   `json:"voter"`
	IdempotencyKey string   `json:"idempotency_key"`
}

// VoteReply is the answer to a VoteMessage: Status 202 means accepted,
// anything else carries the status and code the REST endpoint would give
// (API.md).
type VoteReply struct {
	Status int
	VoteID string
	Code   string
	Detail string
}

// Viewer describes one live connection.
type Viewer struct {
	// Owner is true for an authenticated owner: results are always shown.
	Owner bool
	// Voted is true when the viewer is known to have voted already.
	Voted bool
	// Vote casts a vote for this connection. It is called from the
	// connection's own goroutine, one vote at a time, with a context that
	// ends when the connection does; it may block (ingest waits for the
	// log's ack) without holding up the connection's reads or writes.
	// Nil means votes are refused (403 forbidden).
	Vote func(ctx context.Context, m VoteMessage) VoteReply
	// VoteBatch, when set with Vote, casts the votes waiting on the
	// connection together (up to its queue of 8), in order, returning one
	// reply per vote: a socket's votes then share the wait for the log's
	// acks instead of queueing for it one by one.
	VoteBatch func(ctx context.Context, ms []VoteMessage) []VoteReply
	// Leave, when set, is called once when the connection ends, however it
	// ends (the upgrade failing included): it releases what the caller
	// reserved for the connection, such as the slot of Hub.Admit.
	Leave func()
}

// left calls v.Leave, if set.
func (v Viewer) left() {
	if v.Leave != nil {
		v.Leave()
	}
}

// HubConfig configures NewHub.
type HubConfig struct {
	// MinInterval is the least time between two results messages of a
	// poll. Zero value means 100ms.
	MinInterval time.Duration
	// FanoutRate caps the results messages per second one poll sends from
	// this hub: a poll with more viewers than FanoutRate × MinInterval gets
	// its results less often than every MinInterval (with the defaults,
	// every 160ms at 10,000 viewers), so the hub's writes do not crowd out
	// the votes on the same cores; but never less often than every
	// maxFanoutInterval, so viewers still converge within a second of the
	// last vote (DESIGN.md invariant 5). Zero value means 62,500 (the
	// rate at which, with lanes, 10,000 viewers still leave the cores room
	// for votes: BENCHMARKS.md); negative means no cap.
	FanoutRate int
	// LaneSize is how many viewers of a poll get results together: a poll
	// with more viewers gets them in lanes that take turns over its
	// interval, so the hub's writes come in small bursts rather than one
	// of every viewer. Zero value means 500.
	LaneSize int
	// PingInterval is how often a WebSocket is pinged. Zero value means 20s.
	PingInterval time.Duration
	// PingTimeout closes a socket that does not answer a ping in time.
	// Zero value means 10s.
	PingTimeout time.Duration
	// WriteTimeout bounds every write, and the closing handshake; a socket
	// slower than that is closed. Zero value means 5s.
	WriteTimeout time.Duration
	// MaxMessageBytes caps an inbound WebSocket message; a bigger one closes
	// the socket with StatusMessageTooBig. Zero value means 4096.
	MaxMessageBytes int64
	// MaxPerClient caps the live connections (WebSocket and SSE together)
	// one client (an IPv4 address or an IPv6 /64) may hold on this node:
	// Hub.Admit refuses more. Zero value means no cap.
	MaxPerClient int
	// KeepAlive is the period of SSE comments that keep proxies from
	// closing an idle stream. Zero value means 15s.
	KeepAlive time.Duration
	// ResyncInterval is how often the counts of every followed poll are
	// read again from the store, so that an update lost on core NATS (a
	// reconnect, a cluster route not yet aware of the subscription) still
	// reaches viewers. Zero value means 5s.
	ResyncInterval time.Duration
	// Logger receives operational messages. Zero value means slog.Default().
	Logger *slog.Logger
	// Registerer receives the realtime metrics. Zero value means no metrics.
	Registerer prometheus.Registerer
}

// ErrHubClosed is returned inside the hub, and makes live handlers close
// their connection with "going away", once Close was called.
var ErrHubClosed = errors.New("realtime: hub closed")

// errWriteTimeout is a write that took longer than WriteTimeout.
var errWriteTimeout = errors.New("realtime: write timed out")

// Hub fans the live state of polls out to the viewers connected to this
// node: one core NATS subscription per poll with viewers, one encoding per
// update, a newest-wins mailbox per viewer. It is safe for concurrent use.
type Hub struct {
	nc     *nats.Conn
	cat    *poll.Catalog
	counts CountsFunc
	cfg    HubConfig
	log    *slog.Logger
	m      *metrics

	mu     sync.Mutex
	topics map[string]*topic
	closed bool

	slots     clientSlots // live connections per client, when capped
	viewers   atomic.Int64
	ctx       context.Context // ends with Close
	cancel    context.CancelFunc
	closeOnce sync.Once
	conns     sync.WaitGroup // one per joined viewer, until its handler is done
	loops     sync.WaitGroup // the hub's own goroutines
	noDeadln  sync.Once      // warns once about writers without write deadlines
}

// NewHub returns a hub following counts on nc and poll changes in cat.
// Call Close to end it.
func NewHub(nc *nats.Conn, cat *poll.Catalog, counts CountsFunc, cfg HubConfig) (*Hub, error) {
	if nc == nil || cat == nil || counts == nil {
		return nil, errors.New("realtime: NewHub needs a NATS connection, a catalog and a counts function")
	}
	cfg.MinInterval = cmp.Or(cfg.MinInterval, 100*time.Millisecond)
	cfg.FanoutRate = cmp.Or(cfg.FanoutRate, 62_500)
	cfg.LaneSize = cmp.Or(cfg.LaneSize, 500)
	cfg.PingInterval = cmp.Or(cfg.PingInterval, 20*time.Second)
	cfg.PingTimeout = cmp.Or(cfg.PingTimeout, 10*time.Second)
	cfg.WriteTimeout = cmp.Or(cfg.WriteTimeout, 5*time.Second)
	cfg.MaxMessageBytes = cmp.Or(cfg.MaxMessageBytes, 4096)
	cfg.KeepAlive = cmp.Or(cfg.KeepAlive, 15*time.Second)
	cfg.ResyncInterval = cmp.Or(cfg.ResyncInterval, 5*time.Second)
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	for name, d := range map[string]time.Duration{
		"MinInterval": cfg.MinInterval, "PingInterval": cfg.PingInterval, "PingTimeout": cfg.PingTimeout,
		"WriteTimeout": cfg.WriteTimeout, "KeepAlive": cfg.KeepAlive, "ResyncInterval": cfg.ResyncInterval,
	} {
		if d < 0 {
			return nil, fmt.Errorf("realtime: %s must not be negative", name)
		}
	}
	if cfg.LaneSize < 0 {
		return nil, errors.New("realtime: LaneSize must not be negative")
	}
	if cfg.MaxMessageBytes < 0 {
		return nil, errors.New("realtime: MaxMessageBytes must not be negative")
	}
	if cfg.MaxPerClient < 0 {
		return nil, errors.New("realtime: MaxPerClient must not be negative")
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	h := &Hub{nc: nc, cat: cat, counts: counts, cfg: cfg, log: cfg.Logger, m: m, topics: map[string]*topic{},
		slots: clientSlots{max: cfg.MaxPerClient}}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	cat.OnChange(h.pollChanged)
	h.loops.Go(h.resyncLoop)
	return h, nil
}

// Viewers returns the number of connected viewers.
func (h *Hub) Viewers() int {
	return int(h.viewers.Load())
}

// Close closes every live connection (WebSockets with "going away"),
// unsubscribes, stops the hub's goroutines and waits until every live
// handler has returned. Handlers called after Close close at once.
func (h *Hub) Close() {
	h.closeOnce.Do(func() {
		h.mu.Lock()
		h.closed = true
		topics := h.topics
		h.topics = map[string]*topic{}
		h.mu.Unlock()
		h.cancel()
		for _, t := range topics {
			t.shutdown()
		}
	})
	h.loops.Wait()
	h.conns.Wait()
}

// outMsg is one message to viewers, encoded once and shared by all of them.
type outMsg struct {
	event string // the SSE event name: the message's "type"
	data  []byte // the JSON object
}

func encode(typ string, v any) *outMsg {
	data, err := json.Marshal(v)
	if err != nil {
		panic("realtime: encode " + typ + ": " + err.Error()) // our own types always encode
	}
	return &outMsg{event: typ, data: data}
}

type resultsMessage struct {
	Type string `json:"type"`
	poll.Results
}

type pollMessage struct {
	Type string `json:"type"`
	poll.View
	// Deleted is set on the last message of a deleted poll, just before the
	// connection closes normally.
	Deleted bool `json:"deleted,omitempty"`
}

var hiddenMsg = &outMsg{event: "hidden", data: []byte(`{"type":"hidden"}`)}

// join registers a viewer of pollID and gives it the current state. On
// success the caller must call leave when it stops writing to the viewer,
// and h.conns.Done when its handler returns.
func (h *Hub) join(ctx context.Context, pollID string, vw *viewer) error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return ErrHubClosed
	}
	t, ok := h.topics[pollID]
	if !ok {
		// Subscribe under the lock: it only queues a SUB for the
		// connection's writer, and a topic in the map always has one.
		t = newTopic(h, pollID)
		sub, err := h.nc.Subscribe(votelog.ResultsSubject(pollID), t.onCounts)
		if err != nil {
			h.mu.Unlock()
			return fmt.Errorf("realtime: subscribe: %w", err)
		}
		t.sub = sub
		h.topics[pollID] = t
	}
	t.mu.Lock()
	t.addLocked(vw)
	t.mu.Unlock()
	vw.topic = t
	h.conns.Add(1)
	h.viewers.Add(1)
	h.mu.Unlock()
	h.m.viewers.Inc()

	if !ok {
		t.start()
	}
	// Read the store only once the server knows the subscription: an
	// update published after this read is then sure to reach the topic.
	select {
	case <-t.ready:
	case <-ctx.Done():
		h.leave(vw)
		h.conns.Done()
		return ctx.Err()
	}
	cctx, cancel := context.WithTimeout(ctx, h.cfg.WriteTimeout)
	defer cancel()
	c, err := h.counts(cctx, pollID)
	if err != nil {
		h.leave(vw)
		h.conns.Done()
		return fmt.Errorf("realtime: counts of %s: %w", pollID, err)
	}
	t.initial(vw, c)
	return nil
}

// leave unregisters a viewer once it gets nothing more (its writer has
// returned); the last one of a poll ends its topic. It may be called more
// than once. The handler still calls h.conns.Done when it has returned.
func (h *Hub) leave(vw *viewer) {
	vw.leaveOnce.Do(func() {
		t := vw.topic
		h.mu.Lock()
		t.mu.Lock()
		t.removeLocked(vw)
		last := len(t.viewers) == 0 && h.topics[t.id] == t
		t.mu.Unlock()
		if last {
			delete(h.topics, t.id)
		}
		h.mu.Unlock()
		if last {
			t.shutdown()
		}
		h.viewers.Add(-1)
		h.m.viewers.Dec()
	})
}

// pollChanged is the catalog's change callback.
func (h *Hub) pollChanged(p *poll.Poll) {
	h.mu.Lock()
	t, ok := h.topics[p.ID]
	h.mu.Unlock()
	if ok {
		t.pollChanged(p)
	}
}

// resyncLoop reads the counts of every followed poll from the store every
// ResyncInterval, as a safety net for updates lost on core NATS.
func (h *Hub) resyncLoop() {
	tick := time.NewTicker(h.cfg.ResyncInterval)
	defer tick.Stop()
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-tick.C:
		}
		h.mu.Lock()
		topics := make([]*topic, 0, len(h.topics))
		for _, t := range h.topics {
			topics = append(topics, t)
		}
		h.mu.Unlock()
		for _, t := range topics {
			ctx, cancel := context.WithTimeout(h.ctx, h.cfg.WriteTimeout)
			c, err := h.counts(ctx, t.id)
			cancel()
			if h.ctx.Err() != nil {
				return
			}
			if err != nil {
				h.log.Debug("realtime: resync", "poll", t.id, "err", err)
				continue
			}
			t.merge(c)
		}
	}
}
