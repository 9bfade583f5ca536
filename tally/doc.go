// Package tally owns the counting: it folds the vote log (the VOTES stream
// of package votelog) into per-poll counters and distinct voters in a
// Store, and publishes the new counts of every touched poll on core NATS
// (votelog.ResultsSubject) for the realtime hubs.
//
// One worker per shard reads its shard in order with an ordered consumer
// and applies what is there, up to Config.BatchSize votes, pre-aggregated
// per poll, as one Batch: counters and the shard's watermark (the stream
// sequence applied up to) change together or not at all, and a batch is
// refused (ErrFenced) unless computed against the stored watermark. A
// worker resumes from watermark + 1 and skips anything at or below it, so
// every stored vote is counted exactly once across restarts, redeliveries
// and two workers briefly owning one shard (DESIGN.md invariant 2).
//
// At start, when most shards have most of the log to fold (a fresh memory
// store), one unfiltered reader folds it for every shard first: the
// server then reads the log once rather than once per shard.
//
// MemoryStore is the default and is rebuilt from the log at start;
// RedisStore is for several tally processes, which then share the shards
// through leases (Config.Leases).
package tally
