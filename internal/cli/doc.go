// Package cli owns the client commands of the pollcast binary — `pollcast
// polls|results|watch|vote|keys ...` — a thin layer over package sdk that
// talks to a running server. It reads the command line (flags may stand
// anywhere after the command; POLLCAST_URL and POLLCAST_API_KEY stand in for
// --url and --key) and prints aligned tables for people, or with --json the
// API's own shapes for scripts.
//
// cli.go holds the command table, the runner and the output helpers; each
// resource has its file: polls.go, results.go (results and watch, with the
// in-place terminal screen), votes.go and keys.go. bench.go holds
// `pollcast bench`, the command line of package loadgen (Bench).
//
// Exit status: 0 on success or -h, 1 when the server or the network
// refused, 2 for a mistake on the command line.
package cli
