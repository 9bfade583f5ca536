package tally

// WithoutCatchUp makes t leave the whole rebuild to its shard workers, to
// test them as they run after a fence or under leases.
func WithoutCatchUp(t *Tally) *Tally {
	t.noCatchUp = true
	return t
}

// ReadDirectly returns the sequence up to which t's start-up catch-up
// folded the log with direct gets.
func ReadDirectly(t *Tally) uint64 { return t.direct.Load() }
