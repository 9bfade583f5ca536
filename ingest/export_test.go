package ingest

// RefusedFor is refusedFor, for the tests.
var RefusedFor = refusedFor
