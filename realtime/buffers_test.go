package realtime

import (
	"bytes"
	"net"
	"testing"
)

// writesConn records each write made to the connection underneath.
type writesConn struct {
	net.Conn
	writes [][]byte
}

func (c *writesConn) Write(p []byte) (int, error) {
	c.writes = append(c.writes, bytes.Clone(p))
	return len(p), nil
}

func TestHeldWritesGoOutTogether(t *testing.T) {
	under := &writesConn{}
	c := &heldConn{Conn: under}

	write := func(s string) {
		t.Helper()
		if n, err := c.Write([]byte(s)); err != nil || n != len(s) {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	write("ping")
	if len(under.writes) != 1 {
		t.Fatalf("a write while nothing is held was not passed on: %q", under.writes)
	}

	c.hold()
	write("one,")
	write("two,")
	write("three")
	if len(under.writes) != 1 {
		t.Fatalf("held writes went out before release: %q", under.writes)
	}
	if err := c.release(); err != nil {
		t.Fatal(err)
	}
	if len(under.writes) != 2 || string(under.writes[1]) != "one,two,three" {
		t.Fatalf("after release: %q; want the held writes as one", under.writes)
	}
	if err := c.release(); err != nil || len(under.writes) != 2 {
		t.Fatalf("a release with nothing held wrote: %q, %v", under.writes, err)
	}
	write("pong")
	if len(under.writes) != 3 {
		t.Fatalf("a write after release was held: %q", under.writes)
	}

	// A flush that writes a lot does not buffer it all.
	c.hold()
	big := bytes.Repeat([]byte("x"), maxHeldBytes/4+1)
	for range 4 {
		write(string(big))
	}
	if len(under.writes) != 4 || len(under.writes[3]) != 4*len(big) {
		t.Fatalf("%d writes; want the held bytes written once they reached %d", len(under.writes), maxHeldBytes)
	}
	write("tail")
	if err := c.release(); err != nil {
		t.Fatal(err)
	}
	if last := under.writes[len(under.writes)-1]; string(last) != "tail" {
		t.Fatalf("last write %q, want the tail held after the early write", last)
	}
}
