// Package persist owns the snapshots of the single-process mode: the
// memory tally store, the memory voter registry and the memory idempotency
// keys are saved together in one file (through internal/snapshot) every
// interval and at shutdown; a start loads the newest file that is intact
// and reads only the log after it. It also reports the snapshots' floor
// (Need) that the log's retention keeps.
//
// A file without one of the three is not loaded: what it lacks could not
// be rebuilt from the log after it. A damaged file is logged and skipped,
// never trusted.
//
// It is a wiring package over tally, ingest, votelog and internal/snapshot
// for cmd/pollcast; the roles never import it.
package persist
