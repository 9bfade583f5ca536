// Package cmdline holds what the subcommands of the pollcast binary share
// to read their command lines: flags that may stand before, between or
// after the positional arguments, and the error that means "exit status 2".
package cmdline

import (
	"errors"
	"flag"
	"io"
	"os"
)

// UsageError is a mistake on the command line: the command prints Msg (when
// not empty) and exits with status 2.
type UsageError struct{ Msg string }

func (e UsageError) Error() string { return e.Msg }

// Parse parses fs from args, where flags and positional arguments may
// alternate ("--" ends the flags), and returns the positional ones. A flag
// the FlagSet refuses is a UsageError with no message (the flag package has
// printed what is wrong); -h is flag.ErrHelp.
func Parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, UsageError{}
		}
		rest := fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

// IsTerminal reports whether w is a terminal, where a command may redraw
// its output in place.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
