package testsvc

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"
)

// Strict reports whether missing services fail tests instead of skipping them.
func Strict() bool {
	return os.Getenv("POLLCAST_TEST_STRICT") == "1"
}

// need skips or fails t when the program is not installed.
func need(t testing.TB, program, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(program)
	if err == nil {
		return path
	}
	msg := fmt.Sprintf("%s is not installed (apt-get install %s; make test installs it)", program, pkg)
	if Strict() {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// freePort returns a TCP port free on the loopback interface right now.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Eventually polls cond until it holds, failing the test when timeout
// passes first: tests wait for conditions, never for a fixed time.
func Eventually(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
