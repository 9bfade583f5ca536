package ingest

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/pollcast/pollcast/internal/testsvc"
)

func TestMemoryLimiter(t *testing.T) {
	testLimiter(t, func(rate float64) Limiter { return NewMemoryLimiter(rate) })
}

func TestRedisLimiter(t *testing.T) {
	testLimiter(t, func(rate float64) Limiter {
		rdb, prefix := testsvc.Redis(t)
		return NewRedisLimiter(rdb, prefix, rate)
	})
}

// testLimiter is the conformance suite of every Limiter.
func testLimiter(t *testing.T, newLimiter func(rate float64) Limiter) {
	ctx := context.Background()
	l := newLimiter(2) // bursts of 8
	client := clientPrefix(netip.MustParseAddr("192.0.2.1"))
	for i := range 8 {
		if ok, _, err := l.Allow(ctx, client); !ok || err != nil {
			t.Fatalf("vote %d of the burst refused: %v", i, err)
		}
	}
	ok, wait, err := l.Allow(ctx, client)
	if ok || err != nil || wait <= 0 || wait > time.Second {
		t.Fatalf("over the burst: ok=%v wait=%v err=%v, want refused with a wait of about 500ms", ok, wait, err)
	}
	if ok, _, _ := l.Allow(ctx, clientPrefix(netip.MustParseAddr("192.0.2.2"))); !ok {
		t.Fatal("another client was limited")
	}
	testsvc.Eventually(t, 2*time.Second, "a token after the advised wait", func() bool {
		ok, _, _ := l.Allow(ctx, client)
		return ok
	})
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
