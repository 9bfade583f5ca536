// Package realtime owns live results: hubs that follow the counts the tally
// publishes for each watched poll, conflate them (at most one results
// message per poll per 100 ms), encode each update once, and hand it to
// every viewer through a newest-wins mailbox, over WebSocket or
// Server-Sent Events. A viewer that cannot keep up only ever misses
// intermediate states; a socket that stops answering is closed, so a slow
// reader never slows the hub, the tally or ingest (DESIGN.md invariants 4
// and 5). Votes sent over a live socket are handed to the caller's vote
// function.
package realtime
