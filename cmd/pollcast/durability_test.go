package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pollcast/pollcast/votelog"
)

// TestEmbeddedLogSyncsAlways: pollcast's embedded log flushes every write to
// disk before acknowledging it unless --fsync says an interval, as the
// running NATS server reports it.
func TestEmbeddedLogSyncsAlways(t *testing.T) {
	tests := []struct {
		name         string
		fsync        time.Duration
		wantAlways   bool
		wantInterval time.Duration
	}{
		{"default", 0, true, 0},
		{"--fsync 2m", 2 * time.Minute, false, 2 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := startApp(t, func(c *Config) { c.Fsync = tt.fsync })
			js := a.emb.Server.JetStreamConfig()
			if js == nil {
				t.Fatal("the embedded server runs no JetStream")
			}
			if js.SyncAlways != tt.wantAlways || (!tt.wantAlways && js.SyncInterval != tt.wantInterval) {
				t.Fatalf("server syncs always=%v every %v; want always=%v every %v", js.SyncAlways, js.SyncInterval, tt.wantAlways, tt.wantInterval)
			}
		})
	}
}

// logState returns the number of messages in the vote log, read from the
// running embedded server.
func logState(t testing.TB, a *app) (msgs uint64) {
	t.Helper()
	nc, err := a.emb.Connect("test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(context.Background(), votelog.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// TestConcurrentHTTPVotesShareMessages: concurrent single votes over HTTP
// on one poll, with the log syncing always, are all answered 202 and
// counted exactly, in fewer log messages than votes.
func TestConcurrentHTTPVotesShareMessages(t *testing.T) {
	a := startApp(t)
	id := a.createPoll(map[string]any{"dedupe": "device"})["id"].(string)
	const n = 300
	start := make(chan struct{})
	statuses := make(chan int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			body := fmt.Sprintf(`{"options":["a"],"voter":"d%d"}`, i)
			resp, err := a.client.Post(a.url+"/v1/polls/"+id+"/votes", "application/json", strings.NewReader(body))
			if err != nil {
				statuses <- 0
				return
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		})
	}
	close(start)
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != http.StatusAccepted {
			t.Fatalf("a vote answered %d, want every one 202", s)
		}
	}
	eventually(t, 10*time.Second, "every vote counted", func() bool { return a.total(id) >= n })
	if got := a.results(id); got["total"] != float64(n) || got["voters"] != float64(n) {
		t.Fatalf("results %v, want %d votes of %d voters", got, n, n)
	}
	msgs := logState(t, a)
	if msgs >= n {
		t.Fatalf("%d log messages for %d concurrent votes: none shared a message", msgs, n)
	}
	t.Logf("%d votes in %d log messages", n, msgs)
}

// TestConcurrentSocketVotesShareMessages: single votes sent at once over
// many live sockets take the same way: all 202, counted exactly, in fewer
// log messages than votes.
func TestConcurrentSocketVotesShareMessages(t *testing.T) {
	a := startApp(t)
	id := a.createPoll(map[string]any{"dedupe": "device"})["id"].(string)
	const n = 200
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	wsURL := "ws" + strings.TrimPrefix(a.url, "http") + "/v1/polls/" + id + "/live"
	conns := make([]*websocket.Conn, n)
	for i := range conns {
		c, _, err := websocket.Dial(ctx, wsURL, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		if m := readWS(ctx, t, c); m["type"] != "results" {
			t.Fatalf("first message %v", m)
		}
		conns[i] = c
	}
	start := make(chan struct{})
	replies := make(chan map[string]any, n)
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			<-start
			msg := fmt.Sprintf(`{"type":"vote","ref":"%d","options":["b"],"voter":"ws%d"}`, i, i)
			if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
				replies <- map[string]any{"error": err.Error()}
				return
			}
			for {
				m, err := readMessage(ctx, c)
				if err != nil {
					replies <- map[string]any{"error": err.Error()}
					return
				}
				if m["type"] == "vote_result" {
					replies <- m
					return
				}
			}
		})
	}
	close(start)
	wg.Wait()
	close(replies)
	for m := range replies {
		if m["status"] != float64(http.StatusAccepted) {
			t.Fatalf("a socket vote answered %v, want every one 202", m)
		}
	}
	eventually(t, 10*time.Second, "every vote counted", func() bool { return a.total(id) >= n })
	if got := a.results(id); got["total"] != float64(n) || got["voters"] != float64(n) {
		t.Fatalf("results %v, want %d votes of %d voters", got, n, n)
	}
	msgs := logState(t, a)
	if msgs >= n {
		t.Fatalf("%d log messages for %d concurrent socket votes: none shared a message", msgs, n)
	}
	t.Logf("%d socket votes in %d log messages", n, msgs)
}
