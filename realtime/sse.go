package realtime

import (
	"errors"
	"net/http"
	"time"
)

// ServeSSE streams the poll's live state as Server-Sent Events until the
// client leaves, is too slow, or the hub closes: `event: results|hidden|poll`
// with the same JSON as the WebSocket in `data:`, and a comment every
// KeepAlive. The caller has checked that the poll exists and the Origin is
// allowed; v.Vote is not used (SSE is one-way). w must support flushing
// and, for the write deadline, http.ResponseController.SetWriteDeadline
// (directly or through Unwrap, as gin's writer does).
func (h *Hub) ServeSSE(w http.ResponseWriter, r *http.Request, pollID string, v Viewer) {
	defer v.left()
	ctx := r.Context()
	rc := http.NewResponseController(w)
	vw := newViewer(v)
	if err := h.join(ctx, pollID, vw); err != nil {
		if ctx.Err() == nil {
			if !errors.Is(err, ErrHubClosed) {
				h.log.Warn("realtime: join", "poll", pollID, "err", err)
			}
			w.Header().Set("Retry-After", "2")
			http.Error(w, "live results unavailable, try again", http.StatusServiceUnavailable)
		}
		return
	}
	defer h.conns.Done()
	defer h.leave(vw)

	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Accel-Buffering", "no") // tell nginx not to buffer the stream
	deadlines := true
	write := func(chunks ...[]byte) error {
		if deadlines {
			if err := rc.SetWriteDeadline(time.Now().Add(h.cfg.WriteTimeout)); errors.Is(err, http.ErrNotSupported) {
				deadlines = false
				h.noDeadln.Do(func() {
					h.log.Warn("realtime: the SSE response writer has no write deadline; slow clients are found by keep-alive writes only")
				})
			} else if err != nil {
				return err
			}
		}
		for _, b := range chunks {
			if _, err := w.Write(b); err != nil {
				return err
			}
		}
		return rc.Flush()
	}
	w.WriteHeader(http.StatusOK)
	if write([]byte("retry: 2000\n\n")) != nil {
		return
	}
	keepAlive := time.NewTicker(h.cfg.KeepAlive)
	defer keepAlive.Stop()
	var (
		eventPrefix = []byte("event: ")
		dataPrefix  = []byte("\ndata: ")
		end         = []byte("\n\n")
		comment     = []byte(": keepalive\n\n")
	)
	reason := h.writeLoop(ctx, vw, func(m *outMsg) error {
		return write(eventPrefix, []byte(m.event), dataPrefix, m.data, end)
	}, keepAlive.C, func() error {
		return write(comment)
	})
	if reason == closeSlow {
		h.m.slow.Inc()
		h.log.Info("realtime: closing a slow event stream", "poll", pollID, "err", vw.why)
	}
	if deadlines {
		_ = rc.SetWriteDeadline(time.Time{})
	}
}
