package ingest

import (
	"net/netip"
	"testing"
	"time"
)

func TestLimiterBurstThenRetryAfter(t *testing.T) {
	l := newLimiter(2, 8)
	now := time.Now()
	ip := netip.MustParseAddr("192.0.2.1")
	for i := range 8 {
		if ok, _ := l.allow(ip, now); !ok {
			t.Fatalf("vote %d of the burst refused", i)
		}
	}
	ok, wait := l.allow(ip, now)
	if ok || wait <= 0 || wait > time.Second {
		t.Fatalf("over the burst: ok=%v wait=%v, want refused with a wait of about 500ms", ok, wait)
	}
	if ok, _ := l.allow(ip, now.Add(wait)); !ok {
		t.Fatal("refused after waiting the advised time")
	}
	if ok, _ := l.allow(netip.MustParseAddr("192.0.2.2"), now); !ok {
		t.Fatal("another client was limited")
	}
}

func TestClientPrefixGroupsIPv6By64(t *testing.T) {
	a := clientPrefix(netip.MustParseAddr("2001:db8:1:2:aaaa::1"))
	b := clientPrefix(netip.MustParseAddr("2001:db8:1:2:bbbb::9"))
	c := clientPrefix(netip.MustParseAddr("2001:db8:1:3::1"))
	if a != b || a == c {
		t.Fatalf("prefixes %v %v %v", a, b, c)
	}
	if p := clientPrefix(netip.MustParseAddr("::ffff:192.0.2.1")); p.String() != "192.0.2.1/32" {
		t.Fatalf("mapped IPv4 = %v", p)
	}
}
