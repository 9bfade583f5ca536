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
package analytics
