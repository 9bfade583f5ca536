package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/coder/websocket"
)

// liveFeed is a viewer's connection: WebSocket or Server-Sent Events.
type liveFeed interface {
	// next returns the next message's JSON.
	next(ctx context.Context) ([]byte, error)
	close()
}

// open connects a viewer with Config.Live.
func (vs *viewerSet) open(ctx context.Context) (liveFeed, error) {
	if vs.g.cfg.Live == "sse" {
		return vs.g.openSSE(ctx)
	}
	c, err := vs.g.dialLive(ctx)
	if err != nil {
		return nil, err
	}
	// Reads take no context: one with a Done channel costs a registration
	// per message, and the viewers share the cores with the server they
	// measure. The connection is closed when ctx ends instead.
	f := &wsFeed{c: c}
	f.stop = context.AfterFunc(ctx, f.close)
	return f, nil
}

// wsFeed reads a live WebSocket into one buffer, reused for every message.
type wsFeed struct {
	c    *websocket.Conn
	buf  bytes.Buffer
	stop func() bool
}

// next returns the next message; it is valid until the next call.
func (f *wsFeed) next(context.Context) ([]byte, error) {
	_, r, err := f.c.Reader(context.Background())
	if err != nil {
		return nil, err
	}
	f.buf.Reset()
	if _, err := f.buf.ReadFrom(r); err != nil {
		return nil, err
	}
	return f.buf.Bytes(), nil
}

func (f *wsFeed) close() {
	if f.stop != nil {
		f.stop()
	}
	f.c.CloseNow()
}

// sseFeed reads an event stream; the request's context ends it.
type sseFeed struct {
	body io.ReadCloser
	r    *bufio.Reader
}

// openSSE opens the poll's event stream; the stream lives until ctx ends.
func (g *Generator) openSSE(ctx context.Context) (liveFeed, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.liveURL(true), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if g.cfg.Key != "" {
		req.Header.Set("Authorization", "Bearer "+g.cfg.Key)
	}
	resp, err := g.net.ws.Do(req)
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		code := problemCode(resp)
		resp.Body.Close()
		return nil, fmt.Errorf("events: %s (%s)", resp.Status, code)
	}
	return &sseFeed{body: resp.Body, r: bufio.NewReader(resp.Body)}, nil
}

func (f *sseFeed) next(context.Context) ([]byte, error) {
	for {
		line, err := f.r.ReadBytes('\n')
		if err != nil {
			return nil, err
		}
		if data, ok := bytes.CutPrefix(line, []byte("data:")); ok {
			return bytes.TrimSpace(data), nil
		}
	}
}

func (f *sseFeed) close() { f.body.Close() }

// dialLive opens a live WebSocket to the poll, as its owner when a key was
// given (so that results are visible whatever the poll's visibility): a
// viewer's. The ws scenario's voters use dialVoter (ws.go).
func (g *Generator) dialLive(ctx context.Context) (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, wsDialTimeout)
	defer cancel()
	opts := &websocket.DialOptions{HTTPClient: g.net.ws, CompressionMode: websocket.CompressionDisabled}
	if g.cfg.Key != "" {
		opts.HTTPHeader = http.Header{"Authorization": {"Bearer " + g.cfg.Key}}
	}
	c, resp, err := websocket.Dial(ctx, g.liveURL(false), opts)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("live: %s: %w", resp.Status, err)
		}
		return nil, fmt.Errorf("live: %w", err)
	}
	c.SetReadLimit(1 << 20)
	return c, nil
}
