// Package loadgen is the load generator behind `pollcast bench`: it runs
// a scenario against one's own deployment and checks that the poll
// counted exactly the votes it accepted.
//
// The scenarios (Scenarios) are http (single votes), ws (votes pipelined
// over WebSocket), batch (POST /v1/votes/batch) and viewers (live viewers,
// over WebSocket or Server-Sent Events, while votes arrive over HTTP).
// Without Config.Poll a poll with dedupe "none" is created, so that every
// vote counts.
//
// How it measures: senders vote for Config.Duration, as fast as they can
// or at Config.Rate (open loop: votes due but not sent are reported as
// behind). Latency is a request's time to its answer, or for viewers the
// time from a vote's 202 to a viewer seeing it counted, kept in a
// histogram of 1% buckets. Votes in flight at the end are never
// cancelled, so every vote sent has a known outcome, or is counted as
// unknown when no answer came.
//
// How it checks exactness: after the run the poll's results are read
// until the total stops moving; the run passes when the total gained
// exactly the votes answered 202 and no vote's outcome is unknown.
//
// The hot path speaks HTTP and WebSocket itself: package sdk retries,
// which would hide errors, so sdk only creates the poll and reads the
// results. The ws scenario frames its own WebSocket messages (wsproto.go),
// and the answers and results messages are read with internal/jsonscan
// (message.go), to leave the machine's CPU to the server it measures.
//
// Config is filled by `pollcast bench` (internal/cli) from its flags; New
// checks it, Run runs it once and returns a Summary.
package loadgen
