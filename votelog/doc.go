// Package votelog owns pollcast's NATS layout: the embedded NATS server of
// the single-process mode and how it flushes to disk, the VOTES stream and
// its subjects (votes.<shard>.<poll>), the core NATS subjects results are
// published on (results.<poll>), how a poll maps to a shard, and the binary
// encoding of a vote record in the log. The VOTES stream records the shard
// count it was first started with (shards.go), a small probe stream tells
// ingest when the server takes writes again after refusing votes
// (probe.go), a poll's votes can be erased from the log (purge.go), and
// retention (retention.go) trims the log down to what every fold of it
// saved, recording what was trimmed.
//
// Ingest writes records, tally and analytics read them; none of them knows
// about the others, only about this layout.
package votelog
