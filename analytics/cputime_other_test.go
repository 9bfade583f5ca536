//go:build !linux && !darwin

package analytics

import "time"

// cpuTime cannot be read here: it returns zero.
func cpuTime() time.Duration { return 0 }
