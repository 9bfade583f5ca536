// Package analytics owns what owners learn after the fact: a sink that
// copies every vote of the log, in batches, into an analytics store —
// ClickHouse when distributed, an embedded SQLite file by default — and the
// queries behind the analytics API (timeline, breakdowns) and the CSV
// export.
//
// Every row carries the stream sequence of the log message holding its vote
// and the vote's position in that message (a message may hold several
// votes), and stores are keyed by the two. The sink resumes after the
// largest sequence stored and stores all the votes of a message in one
// insert, so every vote is in analytics exactly once across crashes and
// replays (DESIGN.md invariant 2). The store being down never touches
// ingest or live results: the sink retries and catches up.
//
// Where things are:
//
//   - sink.go: the Sink, which follows the log, batches rows between whole
//     messages, and retries the store until it answers.
//   - giveway.go: how the sink gives way to vote intake while the
//     machine's CPUs are saturated.
//   - purge.go: how the erasure of a purged poll's rows waits until the
//     sink holds none of them on its way (WaitPassed); the stores'
//     DeletePoll removes them.
//   - store.go: the Store contract, its row and result types, and the
//     loading of the embedded schema migrations; store_sqlite.go (the
//     default) and store_clickhouse.go (distributed) implement it, with
//     their schemas under migrations/.
package analytics
