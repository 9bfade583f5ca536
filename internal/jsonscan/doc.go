// Package jsonscan reads the few JSON shapes on pollcast's hottest paths
// (vote bodies, batches of votes, votes over a live socket, and in the
// load generator the server's answers and results) several times faster
// than encoding/json, as a fast path in front of it. It is kept
// because the JSON libraries made for speed (segmentio/encoding/json,
// go-json-experiment/json and its jsontext tokenizer) are not close on
// these shapes: BENCHMARKS.md has the measurement, and the benchmarks
// BenchmarkDecodeVote, BenchmarkDecodeBatch (web) and
// BenchmarkDecodeInbound (realtime) rerun it.
//
// A Scanner reads objects, arrays, strings (with every escape, and invalid
// UTF-8 coerced to U+FFFD exactly as encoding/json does) and null; Number
// returns a number's text for the caller to convert, and Skip passes over
// a value of any kind, checking it as encoding/json does. Whatever a
// method does not take — another kind of value, a malformed or truncated
// document — makes it return ok == false, and the caller is expected to
// give up and decode the whole input again with encoding/json, which then
// produces the value or the exact error it always did. A Scanner therefore
// never reports errors of its own: it only says "handled" or "not handled".
//
// Keys are returned raw; a key with an escape is "not handled", since it may
// spell a known key in another way. Callers compare keys exactly: a decoder
// into a struct gives up on any other key, leaving case-insensitive
// matching and unknown-field handling to encoding/json; one that reads a
// few keys as encoding/json reads into a map skips the other values. Strings
// reads the one array every vote decoder has, a vote's options.
//
// AppendString goes the other way: it writes a string as encoding/json
// does, for the answers written most often (to votes, one by one over a
// socket and a thousand at a time to a batch).
package jsonscan
