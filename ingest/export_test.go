package ingest

import "sync"

// RefusedFor is refusedFor, for the tests.
var RefusedFor = refusedFor

// HoldGroupCommit makes every flush of s's group commit wait, before it
// takes a poll's queue, until release is called: votes arriving while a
// message of their poll is in flight stay queued meanwhile. Call it before
// s takes votes.
func HoldGroupCommit(s *Service) (release func()) {
	s.gc.hold = make(chan struct{})
	return sync.OnceFunc(func() { close(s.gc.hold) })
}

// GroupCommitQueued returns how many votes wait in s's group commit queues.
func GroupCommitQueued(s *Service) int {
	s.gc.mu.Lock()
	defer s.gc.mu.Unlock()
	return s.gc.queued
}

// Abandon makes s leave the claims of its stored votes pending, as a
// process that dies between the log's acknowledgement and the commit does.
func Abandon(s *Service) { s.abandon = true }
