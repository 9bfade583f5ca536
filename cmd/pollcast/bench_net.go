package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// benchNet is how the bench reaches the server: one HTTP transport for
// every request and WebSocket, whose dialer spreads connections over
// several loopback source addresses when asked (one address runs out of
// ephemeral ports at about 28,000 connections to one server port).
type benchNet struct {
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

func newBenchNet(cfg benchConfig) (*benchNet, error) {
	u, err := url.Parse(cfg.url)
	if err != nil {
		return nil, fmt.Errorf("--url: %w", err)
	}
	n := &benchNet{base: cfg.url, dialer: net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}}
	for len(n.base) > 0 && n.base[len(n.base)-1] == '/' {
		n.base = n.base[:len(n.base)-1]
	}
	host := u.Hostname()
	if ip, err := netip.ParseAddr(host); host == "localhost" || err == nil && ip.Is4() && ip.IsLoopback() {
		n.loopback = true
	}
	if n.loopback && cfg.sources > 1 {
		n.sources = loopbackSources(cfg.sources)
	}
	n.transport = &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         n.dial,
		MaxIdleConnsPerHost: cfg.concurrency,
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
func (n *benchNet) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if len(n.sources) == 0 {
		return n.dialer.DialContext(ctx, network, addr)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if host == "localhost" {
		addr = net.JoinHostPort("127.0.0.1", port)
	} else if ip, err := netip.ParseAddr(host); err != nil || !ip.Is4() || !ip.IsLoopback() {
		return n.dialer.DialContext(ctx, network, addr) // a proxy, say
	}
	src := n.sources[(n.next.Add(1)-1)%uint64(len(n.sources))]
	d := n.dialer
	d.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
	return d.DialContext(ctx, "tcp4", addr)
}

func (n *benchNet) close() { n.transport.CloseIdleConnections() }

// benchStats are the counters of a run. Every method is safe for
// concurrent use.
type benchStats struct {
	sent, ok, failed atomic.Int64
	unknown          atomic.Int64 // failed without an answer: maybe counted
	lat              *histogram   // request latency

	mu         sync.Mutex
	codes      map[string]int64
	connErrors int64
	connErr    string // the first connection error
}

// codeTransport is the error code of votes that got no answer.
const codeTransport = "transport"

func newBenchStats() *benchStats {
	return &benchStats{lat: newHistogram(), codes: map[string]int64{}}
}

// fail counts n votes that failed with code.
func (s *benchStats) fail(code string, n int64) {
	s.failed.Add(n)
	if code == codeTransport {
		s.unknown.Add(n)
	}
	s.mu.Lock()
	s.codes[code] += n
	s.mu.Unlock()
}

// connError counts a connection that could not be opened or failed.
func (s *benchStats) connError(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.connErrors++
	if s.connErr == "" {
		s.connErr = err.Error()
	}
}

// connErrorCounts returns the number of connection errors and the first.
func (s *benchStats) connErrorCounts() (int64, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connErrors, s.connErr
}

func (s *benchStats) codeCounts() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.codes)
}

// problemCode returns the API code of a failed answer: the problem
// document's code, else "http_STATUS".
func problemCode(resp *http.Response) string {
	var p struct {
		Code string `json:"code"`
	}
	if json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&p) == nil && p.Code != "" {
		return p.Code
	}
	return "http_" + strconv.Itoa(resp.StatusCode)
}

// statusCode names a non-202 answer without a code.
func statusCode(status int, code string) string {
	if code != "" {
		return code
	}
	return "http_" + strconv.Itoa(status)
}

// pacer hands out the right to send one unit (a vote, a batch request of
// several votes) at a target rate, open loop: when the senders fall
// behind, what is due piles up and they catch up as fast as they can;
// behind says how many votes are still due. A nil pacer lets everything
// through.
type pacer struct {
	rate   float64 // units/s
	unit   int64   // votes a unit
	tokens chan struct{}
	due    atomic.Int64
	taken  atomic.Int64
}

// pacerTick is how often the pacer releases what became due.
const pacerTick = 5 * time.Millisecond

// newPacer returns a pacer of votesPerSec votes a second, unit votes at a
// time, for senders senders; nil when votesPerSec is 0.
func newPacer(votesPerSec float64, unit, senders int) *pacer {
	if votesPerSec <= 0 {
		return nil
	}
	rate := votesPerSec / float64(unit)
	return &pacer{rate: rate, unit: int64(unit), tokens: make(chan struct{}, max(senders, int(rate*pacerTick.Seconds())+1))}
}

// run releases units as they become due until ctx ends.
func (p *pacer) run(ctx context.Context) {
	if p == nil {
		return
	}
	start := time.Now()
	t := time.NewTicker(pacerTick)
	defer t.Stop()
	released := int64(0)
	for {
		due := int64(p.rate * time.Since(start).Seconds())
		p.due.Store(due)
	release:
		for ; released < due; released++ {
			select {
			case p.tokens <- struct{}{}:
			default:
				break release // the senders are busy: it stays due
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// wait takes the right to send one unit; false once ctx ended.
func (p *pacer) wait(ctx context.Context) bool {
	if ctx.Err() != nil {
		return false
	}
	if p == nil {
		return true
	}
	select {
	case <-ctx.Done():
		return false
	case <-p.tokens:
		p.taken.Add(1)
		return true
	}
}

// take takes the right to send one more unit if it is due now, without
// waiting; it reports whether it did.
func (p *pacer) take() bool {
	if p == nil {
		return true
	}
	select {
	case <-p.tokens:
		p.taken.Add(1)
		return true
	default:
		return false
	}
}

// behind returns how many votes were due but not sent.
func (p *pacer) behind() int64 {
	if p == nil {
		return 0
	}
	return max(p.due.Load()-p.taken.Load(), 0) * p.unit
}

// startProgress prints a progress line on stderr every second until the
// returned function is called (or ctx ends).
func (b *bench) startProgress(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	tty := isTerminal(b.stderr)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		var lastOK int64
		for {
			select {
			case <-ctx.Done():
				if tty {
					fmt.Fprintln(b.stderr)
				}
				return
			case <-t.C:
			}
			ok := b.st.ok.Load()
			line := b.progressLine(ok - lastOK)
			lastOK = ok
			if tty {
				fmt.Fprintf(b.stderr, "\r%s\x1b[K", line)
			} else {
				fmt.Fprintln(b.stderr, line)
			}
		}
	}()
	return func() { cancel(); <-done }
}

func (b *bench) progressLine(okLastSecond int64) string {
	line := fmt.Sprintf("bench %s: %4.0fs  sent %d  ok %d  errors %d  %d ok/s",
		b.cfg.scenario, time.Since(b.start).Seconds(), b.st.sent.Load(), b.st.ok.Load(), b.st.failed.Load(), okLastSecond)
	if b.pace != nil {
		line += fmt.Sprintf("  behind %d", b.pace.behind())
	}
	if v := b.viewers; v != nil {
		line += fmt.Sprintf("  viewers %d (dropped %d)", v.connected.Load()-v.dropped.Load(), v.dropped.Load())
	}
	return line
}
