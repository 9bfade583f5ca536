// Package analytics owns what owners learn after the fact: a sink that
// copies every vote of the log, in batches, into an analytics store —
// ClickHouse when distributed, an embedded SQLite file by default — and the
// queries behind the analytics API (timeline, breakdowns) and the CSV
// export.
//
// Every row carries the stream sequence of its vote. The sink resumes from
// the largest sequence stored and stores are keyed by it, so every vote is
// in analytics exactly once across crashes and replays (DESIGN.md
// invariant 2). The store being down never touches ingest or live
// results: the sink retries and catches up.
package analytics
