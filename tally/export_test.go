package tally

// WithoutCatchUp makes t leave the whole rebuild to its shard workers, to
// test them as they run after a fence or under leases.
func WithoutCatchUp(t *Tally) *Tally {
	t.noCatchUp = true
	return t
}
