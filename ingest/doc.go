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
//   - groupcommit.go: group commit, the votes of one poll that arrive while
//     a message of that poll is on its way to the log going together in
//     the next message, so that the log's flush to disk is paid per message
//     rather than per vote.
//   - rebuild.go: refilling the voter registry from the log at start
//     (Rebuild, RebuildAfter, Remember) and watching a durable registry for
//     lost data, to rebuild it while votes of deduplicated polls wait.
//   - purge.go: the erasure of a purged poll's votes from the log and of
//     its voters from the registry.
//   - resolve.go: the outcome of a message whose acknowledgement did not
//     come in time, learned by publishing it again under the same message
//     ID, or by finding it in the log: a 503 always means "not stored".
//   - claims.go: with a durable registry, the ingest nodes' shared reader
//     of the log, which commits the claims of stored votes whose node died
//     before committing them.
//   - identity.go: voter keys and vote IDs, the keyed hashes behind them,
//     and voter tokens (signed, with a subject, and an exp at most
//     Config.MaxTokenTTL ahead).
//   - enrich.go: the country and device class recorded with each vote.
//   - keys.go: the Keys registry contract, the idempotency keys of the
//     votes stored within the window, so that a retry is the same vote;
//     keys_memory.go (the default) and keys_redis.go implement it.
//   - voters.go: the Voters registry contract; voters_memory.go (the
//     default) and voters_redis.go (shared between ingest nodes) implement it.
//   - voters_snapshot.go: snapshots of the memory registry that cover the
//     log up to a known sequence, and loading them; keys_snapshot.go: the
//     same for the memory key registry, so that a retry after a restart
//     from a snapshot is still the same vote.
//   - ratelimit.go: the Limiter contract; ratelimit_memory.go (the default)
//     and ratelimit_redis.go (shared between ingest nodes) implement it.
//   - metrics.go: the counters of accepted and refused votes.
//   - logstate.go: whether the log refuses writes for want of room (its
//     size limit, the account's or the server's storage), which fails
//     Ready with the reason and shows in pollcast_log_refusing, until a
//     stored vote or a probe finds room again.
package ingest
