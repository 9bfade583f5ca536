package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/coder/websocket"
)

// EventType says what an Event carries.
type EventType string

const (
	// EventResults carries the poll's current results. The first event of
	// every connection is EventResults or EventHidden.
	EventResults EventType = "results"
	// EventHidden says the results are hidden from this client
	// (results_visibility); an EventResults follows once they are visible.
	EventHidden EventType = "hidden"
	// EventPoll carries the poll's new definition (closed, relabelled,
	// rescheduled), without owner-only fields.
	EventPoll EventType = "poll"
	// EventDisconnected says the connection was lost (Err says why). Live
	// is reconnecting; the current results follow once it is back.
	EventDisconnected EventType = "disconnected"
	// EventEnd is the last event before the channel closes, when the
	// stream ends for another reason than ctx: the poll was deleted, or the
	// server refuses the connection for good. Err says why (an *Error).
	EventEnd EventType = "end"
)

// Event is one message of a live stream.
type Event struct {
	Type EventType
	// Results is set for EventResults.
	Results *Results
	// Poll is set for EventPoll.
	Poll *Poll
	// Err is set for EventDisconnected and EventEnd.
	Err error
}

// Live follows a poll's results over the WebSocket GET
// /v1/polls/{id}/live until ctx ends. It connects before it returns: an
// error then (an *Error such as CodeNotFound or CodeOriginNotAllowed, or a
// network error) means no stream.
//
// The channel first carries the current results, then new results whenever
// they change and the poll when it changes. Like the server, Live keeps
// only the newest state for a consumer that falls behind: a slow reader
// gets the latest results, never a backlog, and the server never has to
// close the socket for slowness.
//
// When the connection drops, Live sends EventDisconnected, reconnects with
// exponential backoff and jitter (Config.MinBackoff to MaxBackoff) for as
// long as ctx lasts, and resumes with the current results (results that did
// not change while it was away are not sent again). If the server refuses
// to reconnect for good (the poll was deleted: CodeNotFound; the key was
// revoked: CodeUnauthorized), Live sends EventEnd. The channel is closed
// when ctx ends or after EventEnd; a consumer should read it until then.
func (c *Client) Live(ctx context.Context, pollID string) (<-chan Event, error) {
	return c.VoterLive(ctx, pollID, "")
}

// VoterLive is Live as the given voter (device id or voter token) sees the
// poll: on an after_vote poll, results are visible once that voter voted.
func (c *Client) VoterLive(ctx context.Context, pollID, voter string) (<-chan Event, error) {
	var q url.Values
	if voter != "" {
		q = url.Values{"voter": {voter}}
	}
	u := c.endpoint("/v1/polls/"+seg(pollID)+"/live", q)
	switch u.Scheme {
	case "https":
		u.Scheme = "wss"
	default:
		u.Scheme = "ws"
	}
	l := &liveStream{c: c, url: u.String(), in: make(chan Event), out: make(chan Event)}
	conn, err := l.dial(ctx)
	if err != nil {
		return nil, err
	}
	go l.connect(ctx, conn)
	go l.pump(ctx)
	return l.out, nil
}

// liveStream is one Live call: connect reads sockets (and reconnects) into
// in, pump conflates and delivers to out.
type liveStream struct {
	c   *Client
	url string
	in  chan Event // from connect to pump; closed when connect ends
	out chan Event // to the consumer; closed when pump ends
}

const (
	liveReadLimit    = 1 << 20
	livePingInterval = 30 * time.Second
	livePingTimeout  = 15 * time.Second
	// liveStable is how long a connection must last for the backoff to
	// start again from MinBackoff: a server that accepts and drops at once
	// is not hammered.
	liveStable = 10 * time.Second
)

func (l *liveStream) dial(ctx context.Context) (*websocket.Conn, error) {
	h := http.Header{"User-Agent": {l.c.ua}}
	if l.c.cfg.APIKey != "" {
		h.Set("Authorization", "Bearer "+l.c.cfg.APIKey)
	}
	conn, resp, err := websocket.Dial(ctx, l.url, &websocket.DialOptions{HTTPClient: l.c.hc, HTTPHeader: h})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols && resp.Body != nil {
			return nil, errorOf(resp)
		}
		return nil, fmt.Errorf("sdk: live: %w", err)
	}
	conn.SetReadLimit(liveReadLimit)
	return conn, nil
}

// permanent reports whether a failed dial will fail again however long we
// wait: the server refused the request itself.
func permanent(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status >= 400 && e.Status < 500 && e.Status != http.StatusTooManyRequests &&
		e.Status != http.StatusRequestTimeout
}

// connect reads conn, and the connections that replace it, until ctx ends
// or the server refuses for good.
func (l *liveStream) connect(ctx context.Context, conn *websocket.Conn) {
	defer close(l.in)
	attempt := 0 // reconnections since the last stable connection
	for {
		start := time.Now()
		err := l.read(ctx, conn)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) >= liveStable {
			attempt = 0
		}
		if !l.send(ctx, Event{Type: EventDisconnected, Err: err}) {
			return
		}
		for {
			attempt++
			t := time.NewTimer(l.c.backoff(attempt))
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			if conn, err = l.dial(ctx); err == nil {
				break
			}
			if ctx.Err() != nil {
				return
			}
			if permanent(err) {
				l.send(ctx, Event{Type: EventEnd, Err: err})
				return
			}
		}
	}
}

// send hands ev to pump.
func (l *liveStream) send(ctx context.Context, ev Event) bool {
	select {
	case l.in <- ev:
		return true
	case <-ctx.Done():
		return false
	}
}

// read reads conn until it fails, and returns why.
func (l *liveStream) read(ctx context.Context, conn *websocket.Conn) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer conn.CloseNow()
	go func() { // a server that vanished without a word answers no ping
		t := time.NewTicker(livePingInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				pctx, pcancel := context.WithTimeout(ctx, livePingTimeout)
				err := conn.Ping(pctx)
				pcancel()
				if err != nil {
					conn.CloseNow()
					return
				}
			}
		}
	}()
	for {
		typ, data, err := conn.Read(ctx)
		if err != nil {
			return fmt.Errorf("sdk: live: %w", err)
		}
		if typ != websocket.MessageText {
			continue
		}
		ev, ok := decodeLive(data)
		if ok && !l.send(ctx, ev) {
			return ctx.Err()
		}
	}
}

// decodeLive turns a server message into an Event; ok is false for
// messages a follower has no use for.
func decodeLive(data []byte) (Event, bool) {
	var m struct {
		Type EventType `json:"type"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return Event{}, false
	}
	switch m.Type {
	case EventResults:
		var r Results
		if err := json.Unmarshal(data, &r); err != nil {
			return Event{}, false
		}
		return Event{Type: EventResults, Results: &r}, true
	case EventHidden:
		return Event{Type: EventHidden}, true
	case EventPoll:
		var p Poll
		if err := json.Unmarshal(data, &p); err != nil {
			return Event{}, false
		}
		return Event{Type: EventPoll, Poll: &p}, true
	}
	return Event{}, false // vote_result, error: answers to messages Live never sends
}

// pump delivers events to out, newest state first: a results or hidden
// event replaces one not yet delivered, so does a poll event, and repeated
// results (after a reconnection) are dropped.
func (l *liveStream) pump(ctx context.Context) {
	defer close(l.out)
	var queue []Event
	var last *Results // the results last queued, nil after hidden
	in := l.in
	for in != nil || len(queue) > 0 {
		var out chan Event
		var head Event
		if len(queue) > 0 {
			out, head = l.out, queue[0]
		}
		select {
		case <-ctx.Done():
			return
		case out <- head:
			queue = queue[1:]
		case ev, ok := <-in:
			if !ok {
				in = nil
				continue
			}
			switch ev.Type {
			case EventResults:
				if last != nil && sameResults(last, ev.Results) {
					continue
				}
				last = ev.Results
				queue = slices.DeleteFunc(queue, isState)
			case EventHidden:
				last = nil
				queue = slices.DeleteFunc(queue, isState)
			case EventPoll:
				queue = slices.DeleteFunc(queue, func(e Event) bool { return e.Type == EventPoll })
			case EventDisconnected:
				queue = slices.DeleteFunc(queue, func(e Event) bool { return e.Type == EventDisconnected })
			}
			queue = append(queue, ev)
		}
	}
}

func isState(e Event) bool { return e.Type == EventResults || e.Type == EventHidden }

func sameResults(a, b *Results) bool {
	return a.Version == b.Version && a.Status == b.Status && a.Total == b.Total && a.Voters == b.Voters &&
		slices.Equal(a.Options, b.Options)
}
