// Package ingest owns vote admission: it checks a vote against the poll
// catalog (exists, open, origin, options), rate-limits the client, derives
// the voter's identity under the poll's dedupe policy (device id, client IP,
// or a verified voter token), rejects a second vote of the same voter,
// publishes the vote to the log and answers only once JetStream has stored
// it (DESIGN.md invariants 1 and 3).
//
// Identities never reach the log in the clear: a voter is a keyed hash of
// its identity and the poll, and so is an IP.
//
// Where things are:
//
//   - ingest.go: Config, Service and New, and the public methods Vote,
//     VoteBatch, HasVoted and Ready.
//   - admit.go: the decisions about one vote before it is published: rate
//     limit, poll, origin, status and options checks, the voter's claim in
//     the dedupe registry, and the log record made of it.
//   - publish.go: the way to the log: messages of one vote or a pack of
//     them, the log's acknowledgement shared by the votes of a message, and
//     the settling of voter claims once the log answered.
//   - rebuild.go: refilling the voter registry from the log at start
//     (Rebuild, RebuildAfter, Remember) and watching a durable registry for
//     lost data, to rebuild it while votes of deduplicated polls wait.
//   - identity.go: voter keys and vote IDs, the keyed hashes behind them,
//     and voter tokens.
//   - enrich.go: the country and device class recorded with each vote.
//   - voters.go: the Voters registry contract; voters_memory.go (the
//     default) and voters_redis.go (shared between ingest nodes) implement it.
//   - voters_snapshot.go: snapshots of the memory registry that cover the
//     log up to a known sequence, and loading them.
//   - ratelimit.go: the Limiter contract; ratelimit_memory.go (the default)
//     and ratelimit_redis.go (shared between ingest nodes) implement it.
//   - metrics.go: the counters of accepted and refused votes.
package ingest
