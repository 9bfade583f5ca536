// Package testsvc starts real services for tests — private instances on
// free loopback ports with their own configuration under a temporary
// directory. A test that needs a missing service skips with a message,
// unless POLLCAST_TEST_STRICT=1 (make test, CI) makes it fail.
package testsvc
