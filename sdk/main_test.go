package sdk_test

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestMain builds the pollcast binary and starts it, every role in one
// process on a fresh data directory, so that the examples run against a
// real server: they read its address and admin key from POLLCAST_URL and
// POLLCAST_API_KEY, as a user's program would.
func TestMain(m *testing.M) {
	stop, err := startServer()
	if err != nil {
		fmt.Fprintln(os.Stderr, "sdk examples: no server:", err)
		os.Exit(1)
	}
	code := m.Run()
	stop()
	os.Exit(code)
}

func startServer() (stop func(), err error) {
	dir, err := os.MkdirTemp("", "pollcast-sdk-examples-")
	if err != nil {
		return nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	bin := filepath.Join(dir, "pollcast")
	build := exec.Command("go", "build", "-o", bin, "../cmd/pollcast")
	if out, err := build.CombinedOutput(); err != nil {
		cleanup()
		return nil, fmt.Errorf("go build: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cleanup()
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	const key = "pk_sdk-examples-admin-key-0123456789"
	srv := exec.Command(bin, "serve", "--addr", addr, "--data", filepath.Join(dir, "data"), "--vote-rate", "0", "--log-level", "warn")
	srv.Env = append(os.Environ(), "POLLCAST_ADMIN_KEY="+key)
	srv.Stderr = os.Stderr
	if err := srv.Start(); err != nil {
		cleanup()
		return nil, err
	}
	stop = func() {
		_ = srv.Process.Signal(os.Interrupt)
		_ = srv.Wait()
		cleanup()
	}
	url := "http://" + addr
	deadline := time.Now().Add(time.Minute)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for ; ; <-tick.C {
		resp, err := http.Get(url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("pollcast on %s not ready within a minute", addr)
		}
	}
	os.Setenv("POLLCAST_URL", url)
	os.Setenv("POLLCAST_API_KEY", key)
	serverURL = url // read from the environment before TestMain ran
	return stop, nil
}
