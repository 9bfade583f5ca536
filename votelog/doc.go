// Package votelog owns pollcast's NATS layout: the embedded NATS server of
// the single-process mode, the VOTES stream and its subjects
// (votes.<shard>.<poll>), the core NATS subjects results are published on
// (results.<poll>), how a poll maps to a shard, the binary encoding of a
// vote record in the log, and retention (retention.go): trimming the log
// down to what every fold of it saved, and recording what was trimmed.
//
// Ingest writes records, tally and analytics read them; none of them knows
// about the others, only about this layout.
package votelog
