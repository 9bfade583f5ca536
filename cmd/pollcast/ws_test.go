package main

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/coder/websocket"
)

// readWS reads one JSON message from a live socket.
func readWS(ctx context.Context, t testing.TB, c *websocket.Conn) map[string]any {
	t.Helper()
	_, data, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("message %q: %v", data, err)
	}
	return m
}

// readUntil reads messages until one of the given type arrives.
func readUntil(ctx context.Context, t testing.TB, c *websocket.Conn, typ string) map[string]any {
	t.Helper()
	for {
		if m := readWS(ctx, t, c); m["type"] == typ {
			return m
		}
	}
}

// readMessage reads one JSON message, returning the read error.
func readMessage(ctx context.Context, c *websocket.Conn) (map[string]any, error) {
	_, data, err := c.Read(ctx)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	err = json.Unmarshal(data, &m)
	return m, err
}
