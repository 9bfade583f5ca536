package realtime

import (
	"net/netip"
	"sync"
	"time"

	"github.com/pollcast/pollcast/poll"
)

// liveRetryAfter is the Retry-After of a refused live connection: a slot
// frees only when another of the client's connections closes, so asking
// again at once is pointless.
const liveRetryAfter = 5 * time.Second

// clientSlots counts the live connections (WebSocket and SSE together) of
// each client on this node. A client is an IPv4 address, or an IPv6 /64:
// one subscriber usually holds a whole /64 and may pick any address in it,
// so counting single IPv6 addresses would cap nothing. The /64 is also how
// ingest rate-limits and deduplicates by address.
type clientSlots struct {
	max int // 0: no cap

	mu sync.Mutex
	n  map[netip.Prefix]int
}

// clientOf returns the prefix a client address is counted under.
func clientOf(ip netip.Addr) netip.Prefix {
	ip = ip.Unmap()
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return p
}

// take reserves a slot for client, or reports false when it holds max.
func (s *clientSlots) take(client netip.Prefix) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n[client] >= s.max {
		return false
	}
	if s.n == nil {
		s.n = map[netip.Prefix]int{}
	}
	s.n[client]++
	return true
}

func (s *clientSlots) give(client netip.Prefix) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n[client]--; s.n[client] <= 0 {
		delete(s.n, client)
	}
}

// Admit reserves one of the live connections HubConfig.MaxPerClient allows
// the client at ip on this node. The caller calls it before upgrading or
// starting a stream and hands release to the connection as Viewer.Leave,
// which the hub calls when the connection ends, however it ends. Over the
// cap it returns a poll.ErrRateLimited error with a RetryAfter. Without a
// cap, or for an invalid address (not a TCP peer), every connection is
// admitted. release may be called more than once.
func (h *Hub) Admit(ip netip.Addr) (release func(), err error) {
	if h.slots.max <= 0 || !ip.IsValid() {
		return func() {}, nil
	}
	client := clientOf(ip)
	if !h.slots.take(client) {
		h.m.refused.Inc()
		return nil, &poll.Error{Code: poll.CodeRateLimited, RetryAfter: liveRetryAfter,
			Detail: "too many live connections from this address; close one or try again later"}
	}
	return sync.OnceFunc(func() { h.slots.give(client) }), nil
}
