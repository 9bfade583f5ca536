package realtime_test

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pollcast/pollcast/poll"
	"github.com/pollcast/pollcast/realtime"
)

// TestAdmitCapsEachClient: Admit gives a client (an IPv4 address, or an
// IPv6 /64) MaxPerClient slots; past them it refuses with rate_limited and
// a Retry-After; a release frees a slot once however often it is called.
func TestAdmitCapsEachClient(t *testing.T) {
	reg := prometheus.NewRegistry()
	f := newFixture(t, realtime.HubConfig{MaxPerClient: 2, Registerer: reg})
	admit := func(ip string, wantErr error) func() {
		t.Helper()
		var addr netip.Addr
		if ip != "" {
			addr = netip.MustParseAddr(ip)
		}
		release, err := f.hub.Admit(addr)
		if !errors.Is(err, wantErr) || (wantErr == nil) != (err == nil) {
			t.Fatalf("Admit(%s) = %v, want %v", ip, err, wantErr)
		}
		var pe *poll.Error
		if err != nil && (!errors.As(err, &pe) || pe.RetryAfter <= 0) {
			t.Fatalf("Admit(%s) = %#v, want a Retry-After", ip, err)
		}
		return release
	}
	for _, tc := range []struct {
		name   string
		first  string // takes both slots
		second string // then refused: the same client
		other  string // not affected
	}{
		{"ipv4", "192.0.2.1", "192.0.2.1", "192.0.2.2"},
		{"ipv4-mapped ipv6 is ipv4", "198.51.100.7", "::ffff:198.51.100.7", "198.51.100.8"},
		{"ipv6 counts by /64", "2001:db8:0:1::1", "2001:db8:0:1:ffff:ffff:ffff:ffff", "2001:db8:0:2::1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r1 := admit(tc.first, nil)
			r2 := admit(tc.first, nil)
			admit(tc.second, poll.ErrRateLimited)
			admit(tc.other, nil)
			r1()
			r1() // a second release frees nothing more
			r3 := admit(tc.second, nil)
			admit(tc.first, poll.ErrRateLimited)
			r2()
			r3()
		})
	}
	for range 5 { // no address to count by: not capped
		admit("", nil)
	}
	if n := metric(t, reg, "pollcast_realtime_refused_total"); n != 6 {
		t.Fatalf("refused metric %v, want 6", n)
	}
}

// TestLeaveIsCalledOnceAConnectionEnds: Viewer.Leave runs once per
// connection, however it ends: a WebSocket closed by the client, a request
// that is not an upgrade, a socket refused because the store is down, an
// event stream the client left.
func TestLeaveIsCalledOnceAConnectionEnds(t *testing.T) {
	f := newFixture(t, realtime.HubConfig{})
	p := f.newPoll(t, poll.CreateInput{})
	var left atomic.Int32
	f.viewer.Leave = func() { left.Add(1) }
	leftBy := func(what string, want int32) {
		t.Helper()
		waitFor(t, what, func() bool { return left.Load() >= want && f.running.Load() == 0 })
		if got := left.Load(); got != want {
			t.Fatalf("%s: Leave called %d times, want %d", what, got, want)
		}
	}

	c := f.dial(t, p.ID)
	read(t, c, 5*time.Second)
	if n := left.Load(); n != 0 {
		t.Fatalf("Leave called %d times while the socket is open", n)
	}
	c.Close(websocket.StatusNormalClosure, "")
	leftBy("a closed socket", 1)

	resp, err := http.Get(f.srv.URL + "/live/" + p.ID) // no upgrade headers
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	leftBy("a failed upgrade", 2)

	down := errors.New("store down")
	f.storeErr.Store(&down)
	readUntilClosed(t, f.dial(t, p.ID))
	leftBy("a socket refused while the store is down", 3)
	f.storeErr.Store(nil)

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", f.srv.URL+"/events/"+p.ID, nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the stream's viewer", func() bool { return f.hub.Viewers() == 1 })
	cancel()
	resp.Body.Close()
	leftBy("an event stream the client left", 4)
}
