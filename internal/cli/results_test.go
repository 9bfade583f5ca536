package cli

import (
	"bytes"
	"testing"
)

func TestScreenRedrawsInPlace(t *testing.T) {
	var b bytes.Buffer
	s := &screen{w: &b, tty: true}
	s.draw("one\ntwo\n")
	s.draw("three\n")
	if got, want := b.String(), "one\x1b[K\ntwo\x1b[K\n\x1b[J\x1b[2Fthree\x1b[K\n\x1b[J"; got != want {
		t.Fatalf("screen output %q, want %q", got, want)
	}
}
