//go:build !linux && !darwin

package testsvc

import "time"

// CPUTime cannot be read here: it returns zero.
func CPUTime() time.Duration { return 0 }
