// Package realtime owns live results: a Hub follows the counts the tally
// publishes on core NATS for each poll that has viewers on this node,
// conflates them (at most one results message per poll per MinInterval,
// 100 ms by default, and no more than FanoutRate messages per second for a
// crowded poll), encodes each update once, and hands the same bytes to
// every viewer through a newest-wins mailbox, over WebSocket
// (Hub.ServeWebSocket) or Server-Sent Events (Hub.ServeSSE).
//
// A viewer that cannot keep up only ever misses intermediate states; a
// socket whose writes pass WriteTimeout or that does not answer a ping in
// PingTimeout is closed, so a slow reader never slows the hub, the tally or
// ingest (DESIGN.md invariants 4 and 5). Poll changes from the catalog and
// from the clock (opens_at, closes_at) reach viewers as "poll" messages,
// and results visibility is evaluated per viewer on every change. Votes
// sent over a WebSocket are handed to the caller's Viewer.Vote.
//
// The hub also counts the live connections of each client address on this
// node (Hub.Admit, HubConfig.MaxPerClient; limit.go), so that one client
// cannot hold any number of them.
package realtime
