// Command benchbase is the baseline `make bench` measures pollcast's ratios
// against: a bare net/http server that does the least a vote endpoint can
// do — read and JSON-decode the body of POST /v1/polls/{id}/votes and
// answer 202 with a body shaped like pollcast's — without storing
// anything. GET /v1/polls/{id}/results answers {"total": N}, N being the
// votes it answered (for any poll), so that
//
//	pollcast bench http --url http://127.0.0.1:8099 --poll x
//
// runs against it unchanged, its exactness check passing trivially. The
// ratio of pollcast's throughput to benchbase's on the same machine says
// what pollcast's durability and counting cost over plain HTTP.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8099", "address to listen on (port 0 picks a free one)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr, os.Stdout); err != nil {
		log.Fatalf("benchbase: %v", err)
	}
}

// run serves until ctx ends; it prints the address it listens on first.
func run(ctx context.Context, addr string, stdout io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: newHandler(), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "benchbase: serving on http://%s\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// voteInput is the body of a vote, as pollcast decodes it.
type voteInput struct {
	Options        []string `json:"options"`
	Voter          string   `json:"voter"`
	IdempotencyKey string   `json:"idempotency_key"`
	Referrer       string   `json:"referrer"`
}

type voteAccepted struct {
	VoteID string `json:"vote_id"`
	PollID string `json:"poll_id"`
	Status string `json:"status"`
}

func newHandler() http.Handler {
	var votes atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/polls/{id}/votes", func(w http.ResponseWriter, r *http.Request) {
		var in voteInput
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"status":400,"code":"bad_request"}`)
			return
		}
		n := votes.Add(1)
		writeJSON(w, http.StatusAccepted, voteAccepted{VoteID: strconv.FormatInt(n, 36), PollID: r.PathValue("id"), Status: "accepted"})
	})
	mux.HandleFunc("GET /v1/polls/{id}/results", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]int64{"total": votes.Load()})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
