package main

import (
	"io"
	"os"
)

// usageError is a mistake on the bench command line: exit status 2, after
// printing msg when it is not empty.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// isTerminal reports whether w is a terminal, where progress is redrawn in
// place.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
