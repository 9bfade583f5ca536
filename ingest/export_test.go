package ingest

// Abandon makes s leave the claims of its stored votes pending, as a
// process that dies between the log's acknowledgement and the commit does.
func Abandon(s *Service) { s.abandon = true }
