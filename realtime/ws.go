package realtime

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// inbound is any message a client sends on a live socket.
type inbound struct {
	Type string `json:"type"`
	VoteMessage
}

type voteResult struct {
	Type   string `json:"type"`
	Ref    string `json:"ref"`
	Status int    `json:"status"`
	VoteID string `json:"vote_id,omitempty"`
	Code   string `json:"code,omitempty"`
	Detail string `json:"detail,omitempty"`
}

type errorMessage struct {
	Type   string `json:"type"`
	Code   string `json:"code"`
	Detail string `json:"detail"`
}

// ServeWebSocket upgrades the request and streams the poll's live state
// until the client leaves, is too slow, or the hub closes. The caller has
// checked that the poll exists and the Origin is allowed.
func (h *Hub) ServeWebSocket(w http.ResponseWriter, r *http.Request, pollID string, v Viewer) {
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return // Accept answered the client
	}
	c.SetReadLimit(h.cfg.MaxMessageBytes)
	// The request's context ends with the handler, not with the hijacked
	// connection: the connection gets a context of its own.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	vw := newViewer(v)
	if err := h.join(ctx, pollID, vw); err != nil {
		h.log.Warn("realtime: join", "poll", pollID, "err", err)
		c.Close(websocket.StatusInternalError, "could not follow the poll")
		return
	}
	defer h.leave(vw)

	var wg sync.WaitGroup
	wg.Go(func() { h.readLoop(ctx, c, vw, v.Vote) })
	ping := time.NewTicker(h.cfg.PingInterval)
	defer ping.Stop()
	reason := h.writeLoop(ctx, vw, func(m *outMsg) error {
		wctx, wcancel := context.WithTimeout(ctx, h.cfg.WriteTimeout)
		defer wcancel()
		return c.Write(wctx, websocket.MessageText, m.data)
	}, ping.C, func() error {
		// Ping from its own goroutine so a slow pong never holds up writes.
		wg.Go(func() {
			pctx, pcancel := context.WithTimeout(ctx, h.cfg.PingTimeout)
			defer pcancel()
			if err := c.Ping(pctx); err != nil && ctx.Err() == nil {
				vw.close(closeSlow)
			}
		})
		return nil
	})
	switch reason {
	case closeSlow:
		h.m.slow.Inc()
		c.CloseNow() // it does not answer: no closing handshake to wait for
	case closeShutdown:
		c.Close(websocket.StatusGoingAway, "server shutting down")
	case closeGone:
		c.Close(websocket.StatusNormalClosure, "poll deleted")
	default:
		c.CloseNow()
	}
	cancel()
	wg.Wait()
}

// readLoop reads the client's messages until the connection ends.
func (h *Hub) readLoop(ctx context.Context, c *websocket.Conn, vw *viewer, vote func(context.Context, VoteMessage) VoteReply) {
	defer vw.close(closeClient)
	for {
		typ, data, err := c.Read(ctx)
		if err != nil {
			return
		}
		var in inbound
		if typ != websocket.MessageText || json.Unmarshal(data, &in) != nil {
			vw.reply(encode("error", errorMessage{Type: "error", Code: "bad_request", Detail: "send JSON text messages"}))
			continue
		}
		switch {
		case in.Type != "vote":
			vw.reply(encode("error", errorMessage{Type: "error", Code: "bad_request", Detail: "unknown message type"}))
		case vote == nil:
			vw.reply(encode("vote_result", voteResult{Type: "vote_result", Ref: in.Ref, Status: http.StatusForbidden,
				Code: "forbidden", Detail: "voting is not possible on this connection"}))
		default:
			rep := vote(ctx, in.VoteMessage)
			vw.reply(encode("vote_result", voteResult{Type: "vote_result", Ref: in.Ref, Status: rep.Status,
				VoteID: rep.VoteID, Code: rep.Code, Detail: rep.Detail}))
			if rep.Status == http.StatusAccepted && !vw.voted.Swap(true) {
				vw.topic.refresh(vw) // after_vote: results are visible now
			}
		}
	}
}
