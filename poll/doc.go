// Package poll owns pollcast's domain: the poll definition and its rules
// (kinds, dedupe policies, results visibility, schedule), the validation of
// what owners write, the vote counts every role speaks about, the error
// vocabulary of API.md, and the catalog — poll definitions, API keys and the
// server secret kept in a JetStream key-value bucket, cached in memory on
// every node and watched for changes.
//
// Every role (ingest, tally, realtime, analytics, web) depends on this
// package; it depends on no role.
package poll
