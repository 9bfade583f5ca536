//go:build !linux && !darwin

package loadgen

import "errors"

// raiseFileLimit cannot tell or change the limit on open files here.
func raiseFileLimit() (uint64, error) {
	return 0, errors.New("unknown on this system")
}
