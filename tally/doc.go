// Package tally owns the counting: one worker per shard reads the vote log
// in order and folds it, batch by batch, into a Store — per-poll counters
// and distinct voters, stored atomically with the shard's watermark (the
// stream sequence applied up to). A worker resumes from watermark + 1 and
// skips anything at or below it, so every stored vote is counted exactly
// once across restarts and redeliveries (DESIGN.md invariant 2). After each
// batch the new counts of every touched poll are published on core NATS
// for the realtime hubs.
//
// The memory store is the default and is rebuilt from the log at start.
package tally
