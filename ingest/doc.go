// Package ingest owns vote admission: it checks a vote against the poll
// catalog (exists, open, origin, options), rate-limits the client, derives
// the voter's identity under the poll's dedupe policy (device id, client IP,
// or a verified voter token), rejects a second vote of the same voter,
// publishes the vote to the log and answers only once JetStream has stored
// it (DESIGN.md invariants 1 and 3).
//
// Identities never reach the log in the clear: a voter is a keyed hash of
// its identity and the poll, and so is an IP.
package ingest
