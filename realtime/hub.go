package realtime

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pollcast/pollcast/poll"
)

// CountsFunc returns the current counts of a poll (from the tally store).
type CountsFunc func(ctx context.Context, pollID string) (poll.Counts, error)

// VoteMessage is a vote sent over a live socket.
type VoteMessage struct {
	Ref            string   `json:"ref"`
	Options        []string `json:"options"`
	Voter          string   `json:"voter"`
	IdempotencyKey string   `json:"idempotency_key"`
}

// VoteReply is the answer to a VoteMessage: Status 202 means accepted,
// anything else carries the code of API.md.
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
	// Vote casts a vote for this connection; nil means votes are refused.
	Vote func(ctx context.Context, m VoteMessage) VoteReply
}

// HubConfig configures NewHub.
type HubConfig struct {
	// MinInterval is the least time between two results messages of a
	// poll. Zero value means 100ms.
	MinInterval time.Duration
	// PingInterval is how often a WebSocket is pinged. Zero value means 20s.
	PingInterval time.Duration
	// PingTimeout closes a socket that does not answer a ping in time.
	// Zero value means 10s.
	PingTimeout time.Duration
	// WriteTimeout bounds every write; a socket slower than that is
	// closed. Zero value means 5s.
	WriteTimeout time.Duration
	// MaxMessageBytes caps an inbound WebSocket message. Zero value means 4096.
	MaxMessageBytes int64
	// KeepAlive is the period of SSE comments that keep proxies from
	// closing an idle stream. Zero value means 15s.
	KeepAlive time.Duration
	// Logger receives operational messages. Zero value means slog.Default().
	Logger *slog.Logger
	// Registerer receives the realtime metrics. Zero value means no metrics.
	Registerer prometheus.Registerer
}

// Hub fans the live state of polls out to the viewers connected to this
// node. It is safe for concurrent use.
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

	done      chan struct{}
	closeOnce sync.Once
	conns     sync.WaitGroup
}

// NewHub returns a hub following counts on nc and poll changes in cat.
func NewHub(nc *nats.Conn, cat *poll.Catalog, counts CountsFunc, cfg HubConfig) (*Hub, error) {
	if nc == nil || cat == nil || counts == nil {
		return nil, errors.New("realtime: missing dependency")
	}
	cfg.MinInterval = cmp.Or(cfg.MinInterval, 100*time.Millisecond)
	cfg.PingInterval = cmp.Or(cfg.PingInterval, 20*time.Second)
	cfg.PingTimeout = cmp.Or(cfg.PingTimeout, 10*time.Second)
	cfg.WriteTimeout = cmp.Or(cfg.WriteTimeout, 5*time.Second)
	cfg.MaxMessageBytes = cmp.Or(cfg.MaxMessageBytes, 4096)
	cfg.KeepAlive = cmp.Or(cfg.KeepAlive, 15*time.Second)
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	h := &Hub{nc: nc, cat: cat, counts: counts, cfg: cfg, log: cfg.Logger, m: m,
		topics: map[string]*topic{}, done: make(chan struct{})}
	cat.OnChange(h.pollChanged)
	return h, nil
}

// Viewers returns the number of connected viewers.
func (h *Hub) Viewers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, t := range h.topics {
		t.mu.Lock()
		n += len(t.viewers)
		t.mu.Unlock()
	}
	return n
}

// Close closes every live connection and waits until they are gone.
func (h *Hub) Close() {
	h.closeOnce.Do(func() {
		h.mu.Lock()
		h.closed = true
		topics := h.topics
		h.topics = map[string]*topic{}
		h.mu.Unlock()
		close(h.done)
		for _, t := range topics {
			t.shutdown()
		}
	})
	h.conns.Wait()
}

// outMsg is one message to a viewer, encoded once and shared.
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
}

var hiddenMsg = &outMsg{event: "hidden", data: []byte(`{"type":"hidden"}`)}

// join registers a viewer of pollID and gives it the current state.
func (h *Hub) join(ctx context.Context, pollID string, vw *viewer) error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return errors.New("realtime: hub closed")
	}
	t, ok := h.topics[pollID]
	if !ok {
		t = newTopic(h, pollID)
		h.topics[pollID] = t
	}
	t.mu.Lock()
	t.viewers[vw] = struct{}{}
	t.mu.Unlock()
	vw.topic = t
	h.conns.Add(1)
	h.mu.Unlock()
	h.m.viewers.Inc()

	if !ok {
		if err := t.subscribe(); err != nil {
			h.leave(vw)
			return err
		}
	}
	c, err := h.counts(ctx, pollID)
	if err != nil {
		h.leave(vw)
		return err
	}
	t.initial(vw, c)
	return nil
}

// leave unregisters a viewer; the last one of a poll ends its topic.
func (h *Hub) leave(vw *viewer) {
	t := vw.topic
	h.mu.Lock()
	t.mu.Lock()
	delete(t.viewers, vw)
	last := len(t.viewers) == 0 && h.topics[t.id] == t
	t.mu.Unlock()
	if last {
		delete(h.topics, t.id)
	}
	h.mu.Unlock()
	if last {
		t.shutdown()
	}
	h.m.viewers.Dec()
	h.conns.Done()
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
