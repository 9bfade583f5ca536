package realtime

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// ServeSSE streams the poll's live state as Server-Sent Events until the
// client leaves, is too slow, or the hub closes. The caller has checked
// that the poll exists and the Origin is allowed.
func (h *Hub) ServeSSE(w http.ResponseWriter, r *http.Request, pollID string, v Viewer) {
	rc := http.NewResponseController(w)
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Accel-Buffering", "no") // tell nginx not to buffer the stream
	ctx := r.Context()

	vw := newViewer(v)
	if err := h.join(ctx, pollID, vw); err != nil {
		h.log.Warn("realtime: join", "poll", pollID, "err", err)
		http.Error(w, "could not follow the poll", http.StatusInternalServerError)
		return
	}
	defer h.leave(vw)

	write := func(format string, args ...any) error {
		if err := rc.SetWriteDeadline(time.Now().Add(h.cfg.WriteTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return err
		}
		if _, err := fmt.Fprintf(w, format, args...); err != nil {
			return err
		}
		return rc.Flush()
	}
	w.WriteHeader(http.StatusOK)
	if err := write("retry: 2000\n\n"); err != nil {
		return
	}
	keepAlive := time.NewTicker(h.cfg.KeepAlive)
	defer keepAlive.Stop()
	reason := h.writeLoop(ctx, vw, func(m *outMsg) error {
		return write("event: %s\ndata: %s\n\n", m.event, m.data)
	}, keepAlive.C, func() error {
		return write(": keepalive\n\n")
	})
	if reason == closeSlow {
		h.m.slow.Inc()
	}
	_ = rc.SetWriteDeadline(time.Time{})
}
