// Package snapshot owns the snapshot files of the single-process mode: the
// file format, writing a file atomically, finding the newest valid one and
// keeping the last few. What goes into a file is up to the roles: each
// writes and reads the payload of its own sections (see Kind);
// internal/persist gathers them into one file.
//
// A file is
//
//	header   magic "PCSNAP\r\n", version u32, reserved u32, created i64 (Unix ns), need u64
//	payloads the sections' bytes, back to back
//	table    count u32, then per section: kind u32, reserved u32, offset u64, length u64
//	trailer  table offset u64, CRC-32C u32 of every byte before it, end magic "PCSE"
//
// all little-endian. Need is the lowest stream sequence of the log the
// snapshot needs to be brought up to date: the log must keep it and what
// follows. Open checks the magic, the version, the trailer, the table's
// bounds and the checksum over the whole file before anything is read
// from it, so that a torn, truncated or corrupt file is refused, never
// trusted. A reader skips sections of kinds it does not know: a new kind
// of section needs no new version. A kind whose payload changes shape
// needs one (Version): files of another version are refused (ErrVersion)
// like damaged ones, and a restart falls back on an older file or the
// whole log.
//
// Save writes to a temporary file in the directory, syncs it, renames it
// into place and syncs the directory: a crash leaves the old files and at
// worst a temporary one, removed at the next OpenDir.
package snapshot
