package loadgen

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync/atomic"
	"time"
)

// network is how the generator reaches the server: one HTTP transport for
// every request and WebSocket, whose dialer spreads connections over
// several loopback source addresses when asked (one source address runs
// out of ephemeral ports towards one server port).
type network struct {
	base      string       // the server's URL, without a trailing slash
	hc        *http.Client // votes: no retries, no redirects
	ws        *http.Client // WebSocket and SSE dials: no overall timeout
	transport *http.Transport
	loopback  bool
	dialer    net.Dialer
	sources   []netip.Addr // source addresses to take turns with; nil means the system's choice
	next      atomic.Uint64
}

// requestTimeout bounds one vote or batch request.
const requestTimeout = 30 * time.Second

func newNetwork(cfg Config) (*network, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("--url: %w", err)
	}
	n := &network{base: cfg.URL, dialer: net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}}
	for len(n.base) > 0 && n.base[len(n.base)-1] == '/' {
		n.base = n.base[:len(n.base)-1]
	}
	host := u.Hostname()
	if ip, err := netip.ParseAddr(host); host == "localhost" || err == nil && ip.Is4() && ip.IsLoopback() {
		n.loopback = true
	}
	if n.loopback && cfg.Sources > 1 {
		n.sources = loopbackSources(cfg.Sources)
	}
	n.transport = &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         n.dial,
		MaxIdleConnsPerHost: cfg.Concurrency,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	if n.loopback {
		n.transport.Proxy = nil
	}
	noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	n.hc = &http.Client{Transport: n.transport, Timeout: requestTimeout, CheckRedirect: noRedirect}
	n.ws = &http.Client{Transport: n.transport, CheckRedirect: noRedirect}
	return n, nil
}

// loopbackSources returns 127.0.0.1, 127.0.0.2, ... n of them.
func loopbackSources(n int) []netip.Addr {
	out := make([]netip.Addr, n)
	a := netip.AddrFrom4([4]byte{127, 0, 0, 1})
	for i := range out {
		out[i] = a
		a = a.Next()
	}
	return out
}

// dial connects to addr, from the next source address when the target is
// a loopback one.
func (n *network) dial(ctx context.Context, netw, addr string) (net.Conn, error) {
	if len(n.sources) == 0 {
		return n.dialer.DialContext(ctx, netw, addr)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if host == "localhost" {
		addr = net.JoinHostPort("127.0.0.1", port)
	} else if ip, err := netip.ParseAddr(host); err != nil || !ip.Is4() || !ip.IsLoopback() {
		return n.dialer.DialContext(ctx, netw, addr) // a proxy, say
	}
	src := n.sources[(n.next.Add(1)-1)%uint64(len(n.sources))]
	d := n.dialer
	d.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
	return d.DialContext(ctx, "tcp4", addr)
}

func (n *network) close() { n.transport.CloseIdleConnections() }
