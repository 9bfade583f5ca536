// Package web owns pollcast's HTTP surface: the gin router, the REST
// handlers of API.md, authentication with API keys, CORS for embedded polls,
// the one mapping of domain errors to problem+json, and the operational
// endpoints (healthz, readyz, metrics), and the bounds on what one client
// may hold (bounds.go: the deadline on reading request bodies; the live
// connection cap is asked of the realtime hub). It wires the roles'
// services to HTTP; it holds no state of its own. It also runs the erasure of a poll
// (purge.go), which spans the roles' stores: the tally's, ingest's voter
// registry and the log, and the analytics store.
package web
