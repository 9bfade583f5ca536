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
// server then reads the log once rather than once per shard. With
// Config.DirectRead, which cmd sets for the memory store, an empty store
// is read with batched direct gets instead of a consumer.
//
// MemoryStore is the default and comes back at start from a snapshot
// (MemoryStore.Snapshot, LoadSnapshot; cmd keeps the files) and the log
// after it, or from the whole log; RedisStore is for several tally
// processes, which then share the shards through leases (Config.Leases).
//
// With retention, the log loses votes every store saved: a shard that
// would rebuild from the start of a trimmed log refuses (ErrLogTrimmed)
// instead of counting only what is left.
//
// The files:
//
//   - tally.go: Config, the Tally's life (New, Start, Close) and what it
//     reports (Lag, WaitCaughtUp, Observed).
//   - worker.go: a shard worker: following its shard from the stored
//     watermark, under its lease when there are leases, starting over
//     after a fence or an error.
//   - apply.go: applying a batch and the bookkeeping after it, the same on
//     every path (commit), and publishing the counts of the polls it
//     touched.
//   - behind.go: a log that lost its tail (a watermark past its end),
//     found at start and while running: the shard is reset and folded
//     again from the start of the log.
//   - catchup.go: the start-up catch-up: choosing how to read the log, the
//     state every start-up read carries, and the read with one consumer.
//   - direct.go: the start-up read of an empty store with direct gets.
//   - batch.go: the batcher, which pre-aggregates a shard's votes into a
//     Batch.
//   - consume.go: the ordered consumer a reader reads the log through, and
//     where a message it delivers stands in the log.
//   - inbox.go: the hand-off from a subscription's handler to a reader, a
//     slice of messages at a time.
//   - store.go, store_memory.go, store_redis.go: the Store contract and its
//     two implementations; voterset.go: the memory store's distinct voters.
//   - snapshot.go: the memory store's snapshots: a consistent copy, its
//     encoding, loading it, and the keyed hash of voter keys saved with it.
//   - retention.go: what the shards still need of the log (a floor for
//     votelog.Retain), idle shards' watermarks, and the refusal to rebuild
//     from a trimmed log.
package tally
