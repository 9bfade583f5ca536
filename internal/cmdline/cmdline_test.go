package cmdline

import (
	"errors"
	"flag"
	"io"
	"slices"
	"testing"
)

func TestParseInterleaved(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantPos []string
		wantN   int
		wantErr error
	}{
		{name: "flags first", args: []string{"-n", "3", "a", "b"}, wantPos: []string{"a", "b"}, wantN: 3},
		{name: "flags between", args: []string{"a", "-n", "4", "b"}, wantPos: []string{"a", "b"}, wantN: 4},
		{name: "flags last", args: []string{"a", "b", "-n=5"}, wantPos: []string{"a", "b"}, wantN: 5},
		{name: "double dash", args: []string{"a", "--", "-n", "b"}, wantPos: []string{"a", "-n", "b"}},
		{name: "help", args: []string{"a", "-h"}, wantErr: flag.ErrHelp},
		{name: "unknown flag", args: []string{"-x"}, wantErr: UsageError{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			n := fs.Int("n", 0, "")
			pos, err := Parse(fs, tt.args)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err == nil && (!slices.Equal(pos, tt.wantPos) || *n != tt.wantN) {
				t.Fatalf("pos %q n %d, want %q n %d", pos, *n, tt.wantPos, tt.wantN)
			}
		})
	}
}
