package votelog

// FirstSince exposes firstSince to the external tests.
var FirstSince = firstSince
