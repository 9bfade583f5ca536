package ingest_test

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// ackProxy sits between a NATS client and a real server and loses
// JetStream's acknowledgements of stored votes on their way back, as a
// network or a busy server may: the log stores the vote, the client never
// hears of it. Everything else passes unchanged.
type ackProxy struct {
	ln      net.Listener
	server  string
	drop    atomic.Int64 // acks still to lose; negative: all of them
	dropped atomic.Int64
	wg      sync.WaitGroup
}

// startAckProxy starts a proxy to the NATS server at url (nats://host:port)
// and returns it; its URL is p.url().
func startAckProxy(tb testing.TB, url string) *ackProxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &ackProxy{ln: ln, server: strings.TrimPrefix(url, "nats://")}
	p.wg.Go(p.serve)
	tb.Cleanup(func() {
		ln.Close()
		p.wg.Wait()
	})
	return p
}

func (p *ackProxy) url() string { return "nats://" + p.ln.Addr().String() }

func (p *ackProxy) serve() {
	var conns sync.WaitGroup
	defer conns.Wait()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.server)
		if err != nil {
			c.Close()
			continue
		}
		conns.Go(func() {
			_, _ = io.Copy(s, c)
			s.Close()
		})
		conns.Go(func() {
			p.toClient(c, s)
			c.Close()
		})
	}
}

// toClient copies the server's protocol to the client frame by frame,
// leaving out the acks it is told to lose.
func (p *ackProxy) toClient(c, s net.Conn) {
	r := bufio.NewReader(s)
	w := bufio.NewWriter(c)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return
		}
		var payload []byte
		if f := strings.Fields(string(line)); len(f) > 0 && (f[0] == "MSG" || f[0] == "HMSG") {
			n, err := strconv.Atoi(f[len(f)-1])
			if err != nil {
				return
			}
			payload = make([]byte, n+2) // and its CRLF
			if _, err := io.ReadFull(r, payload); err != nil {
				return
			}
			if p.lose(f[0], payload) {
				continue
			}
		}
		_, _ = w.Write(line)
		_, _ = w.Write(payload)
		if r.Buffered() == 0 {
			if w.Flush() != nil {
				return
			}
		}
	}
}

// lose reports whether a message is an acknowledgement of the vote log to
// lose.
func (p *ackProxy) lose(op string, payload []byte) bool {
	if op != "MSG" || !bytes.HasPrefix(payload, []byte(`{"stream":"VOTES"`)) {
		return false
	}
	for {
		n := p.drop.Load()
		switch {
		case n == 0:
			return false
		case n < 0:
			p.dropped.Add(1)
			return true
		case p.drop.CompareAndSwap(n, n-1):
			p.dropped.Add(1)
			return true
		}
	}
}
