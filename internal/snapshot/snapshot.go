package snapshot

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Kind names what a section holds. The numbers are part of the file
// format: never reuse one.
type Kind uint32

const (
	// KindTally is the memory tally store: counters, distinct voters and
	// shard watermarks (tally.MemoryStore).
	KindTally Kind = 1
	// KindVoters is ingest's memory voter registry: voters and their
	// votes, with the log sequence it is complete up to (ingest.MemoryVoters).
	KindVoters Kind = 2
	// KindVoteIDs is ingest's memory registry of idempotency keys: the
	// vote IDs of keyed votes stored within the idempotency window, with
	// the log sequence it is complete up to (ingest.MemoryKeys).
	KindVoteIDs Kind = 3
)

// Version is the version of the format written, and the only one read: it
// changes when a kind's payload changes in a way a reader of the old one
// would misread.
const Version = 2

var (
	magic    = [8]byte{'P', 'C', 'S', 'N', 'A', 'P', '\r', '\n'}
	endMagic = [4]byte{'P', 'C', 'S', 'E'}
	castagn  = crc32.MakeTable(crc32.Castagnoli)
)

const (
	headerLen  = 32
	entryLen   = 24
	trailerLen = 16
)

// ErrCorrupt is returned by Open for a file that is not a whole, intact
// snapshot: torn, truncated, altered, or of another format.
var ErrCorrupt = errors.New("snapshot: corrupt or incomplete file")

// ErrVersion is returned by Open for a snapshot file of another Version:
// intact perhaps, but not readable by this build.
var ErrVersion = errors.New("snapshot: a file of another format version")

// Section is one section to write: Write writes its payload.
type Section struct {
	Kind  Kind
	Write func(w io.Writer) error
}

// Config configures OpenDir.
type Config struct {
	// Keep is how many snapshots are kept, the newest ones. Zero value means 3.
	Keep int
	// Logger receives what is removed. Zero value means slog.Default().
	Logger *slog.Logger
}

// Dir is a directory of snapshot files. Save may not be called
// concurrently with itself; the other methods may.
type Dir struct {
	path string
	cfg  Config
}

// OpenDir opens (and creates) a directory of snapshots and removes the
// temporary files a crash during Save left behind.
func OpenDir(path string, cfg Config) (*Dir, error) {
	cfg.Keep = cmp.Or(cfg.Keep, 3)
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	if cfg.Keep < 1 {
		return nil, errors.New("snapshot: keep at least one")
	}
	if err := os.MkdirAll(path, 0o750); err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	tmps, err := filepath.Glob(filepath.Join(path, ".snapshot-*.tmp"))
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	for _, t := range tmps {
		_ = os.Remove(t)
	}
	return &Dir{path: path, cfg: cfg}, nil
}

// List returns the paths of the snapshot files, newest first.
func (d *Dir) List() ([]string, error) {
	ents, err := os.ReadDir(d.path)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	var names []string
	for _, e := range ents {
		if n := e.Name(); strings.HasPrefix(n, "snapshot-") && strings.HasSuffix(n, ".pcs") && e.Type().IsRegular() {
			names = append(names, n)
		}
	}
	slices.Sort(names) // the name holds a fixed-width time: newest last
	slices.Reverse(names)
	for i, n := range names {
		names[i] = filepath.Join(d.path, n)
	}
	return names, nil
}

// Save writes a snapshot of the sections, which needs the log from
// sequence need on, then keeps only the newest Config.Keep snapshots. It
// returns the new file's path. A section whose Write fails fails the
// Save, and leaves no file.
func (d *Dir) Save(need uint64, sections []Section) (path string, err error) {
	created := time.Now()
	f, err := os.CreateTemp(d.path, ".snapshot-*.tmp")
	if err != nil {
		return "", fmt.Errorf("snapshot: %w", err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if err := write(f, created, need, sections); err != nil {
		return "", err
	}
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("snapshot: sync: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("snapshot: %w", err)
	}
	path = filepath.Join(d.path, fmt.Sprintf("snapshot-%020d.pcs", created.UnixNano()))
	if err := os.Rename(f.Name(), path); err != nil {
		return "", fmt.Errorf("snapshot: %w", err)
	}
	if err := syncDir(d.path); err != nil {
		return "", err
	}
	d.prune()
	return path, nil
}

// prune removes all but the newest Keep snapshots.
func (d *Dir) prune() {
	paths, err := d.List()
	if err != nil || len(paths) <= d.cfg.Keep {
		return
	}
	for _, p := range paths[d.cfg.Keep:] {
		if err := os.Remove(p); err != nil {
			d.cfg.Logger.Warn("snapshot: remove an old snapshot", "path", p, "err", err)
		}
	}
}

// Need returns the lowest Need of the snapshots kept, as their headers
// say, and whether there is any: the log must keep what the oldest one
// needs, for a restart to fall back on it when the newer ones are damaged.
// A file whose header cannot be read is left out: it cannot be loaded.
func (d *Dir) Need() (need uint64, ok bool) {
	paths, err := d.List()
	if err != nil {
		return 0, false
	}
	for _, p := range paths {
		h, err := readHeader(p)
		if err != nil {
			continue
		}
		if !ok || h.need < need {
			need, ok = h.need, true
		}
	}
	return need, ok
}

func syncDir(path string) error {
	dir, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	defer dir.Close()
	if err := dir.Sync(); err != nil {
		return fmt.Errorf("snapshot: sync directory: %w", err)
	}
	return nil
}

// crcWriter counts and checksums what goes through it to w.
type crcWriter struct {
	w   io.Writer
	crc hash.Hash32
	n   uint64
}

func (c *crcWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.crc.Write(p[:n])
	c.n += uint64(n)
	return n, err
}

type tableEntry struct {
	kind        Kind
	off, length uint64
}

// write writes the whole file to w.
func write(w io.Writer, created time.Time, need uint64, sections []Section) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	cw := &crcWriter{w: bw, crc: crc32.New(castagn)}
	var h [headerLen]byte
	copy(h[:8], magic[:])
	binary.LittleEndian.PutUint32(h[8:], Version)
	binary.LittleEndian.PutUint64(h[16:], uint64(created.UnixNano()))
	binary.LittleEndian.PutUint64(h[24:], need)
	if _, err := cw.Write(h[:]); err != nil {
		return fmt.Errorf("snapshot: write: %w", err)
	}
	table := make([]tableEntry, 0, len(sections))
	for _, s := range sections {
		off := cw.n
		if err := s.Write(cw); err != nil {
			return fmt.Errorf("snapshot: section %d: %w", s.Kind, err)
		}
		table = append(table, tableEntry{kind: s.Kind, off: off, length: cw.n - off})
	}
	tableOff := cw.n
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(table)))
	for _, e := range table {
		b = binary.LittleEndian.AppendUint32(b, uint32(e.kind))
		b = binary.LittleEndian.AppendUint32(b, 0)
		b = binary.LittleEndian.AppendUint64(b, e.off)
		b = binary.LittleEndian.AppendUint64(b, e.length)
	}
	b = binary.LittleEndian.AppendUint64(b, tableOff)
	if _, err := cw.Write(b); err != nil {
		return fmt.Errorf("snapshot: write: %w", err)
	}
	t := binary.LittleEndian.AppendUint32(nil, cw.crc.Sum32())
	t = append(t, endMagic[:]...)
	if _, err := bw.Write(t); err != nil {
		return fmt.Errorf("snapshot: write: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("snapshot: write: %w", err)
	}
	return nil
}

// header is what the first bytes of a file say.
type header struct {
	created time.Time
	need    uint64
}

func parseHeader(b []byte) (header, error) {
	if len(b) < headerLen || [8]byte(b[:8]) != magic {
		return header{}, fmt.Errorf("%w: not a snapshot file", ErrCorrupt)
	}
	if v := binary.LittleEndian.Uint32(b[8:]); v != Version {
		return header{}, fmt.Errorf("%w: version %d, this build reads %d", ErrVersion, v, Version)
	}
	return header{
		created: time.Unix(0, int64(binary.LittleEndian.Uint64(b[16:]))),
		need:    binary.LittleEndian.Uint64(b[24:]),
	}, nil
}

func readHeader(path string) (header, error) {
	f, err := os.Open(path)
	if err != nil {
		return header{}, err
	}
	defer f.Close()
	var b [headerLen]byte
	if _, err := io.ReadFull(f, b[:]); err != nil {
		return header{}, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return parseHeader(b[:])
}

// Snapshot is an open, verified snapshot file.
type Snapshot struct {
	Path string
	// Created is when it was written.
	Created time.Time
	// Need is the lowest log sequence it needs (see Dir.Save).
	Need uint64

	f        *os.File
	sections []tableEntry
}

// Open opens a snapshot file and verifies it whole: an error wrapping
// ErrCorrupt means the file is damaged, one wrapping ErrVersion that it is
// of another format version; neither must be used.
func Open(path string) (*Snapshot, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	s, err := verify(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("snapshot %s: %w", filepath.Base(path), err)
	}
	s.Path = path
	return s, nil
}

// verify checks the file's structure and checksum and reads its table.
func verify(f *os.File) (*Snapshot, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := uint64(st.Size())
	if size < headerLen+4+8+trailerLen-8 {
		return nil, fmt.Errorf("%w: %d bytes is too short", ErrCorrupt, size)
	}
	var hb [headerLen]byte
	if _, err := f.ReadAt(hb[:], 0); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	h, err := parseHeader(hb[:])
	if err != nil {
		return nil, err
	}
	var tb [trailerLen]byte
	if _, err := f.ReadAt(tb[:], int64(size-trailerLen)); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if [4]byte(tb[12:]) != endMagic {
		return nil, fmt.Errorf("%w: no end marker (torn or truncated)", ErrCorrupt)
	}
	want := binary.LittleEndian.Uint32(tb[8:])
	crc := crc32.New(castagn)
	if _, err := io.Copy(crc, io.NewSectionReader(f, 0, int64(size-8))); err != nil {
		return nil, fmt.Errorf("snapshot: read: %w", err)
	}
	if got := crc.Sum32(); got != want {
		return nil, fmt.Errorf("%w: checksum %08x, the file says %08x", ErrCorrupt, got, want)
	}
	tableOff := binary.LittleEndian.Uint64(tb[:8])
	tableEnd := size - trailerLen
	if tableOff < headerLen || tableOff+4 > tableEnd {
		return nil, fmt.Errorf("%w: table out of bounds", ErrCorrupt)
	}
	table := make([]byte, tableEnd-tableOff)
	if _, err := f.ReadAt(table, int64(tableOff)); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	n := uint64(binary.LittleEndian.Uint32(table))
	if 4+n*entryLen != uint64(len(table)) {
		return nil, fmt.Errorf("%w: table of %d sections in %d bytes", ErrCorrupt, n, len(table))
	}
	s := &Snapshot{Created: h.created, Need: h.need, f: f}
	for i := range n {
		e := table[4+i*entryLen:]
		te := tableEntry{
			kind:   Kind(binary.LittleEndian.Uint32(e)),
			off:    binary.LittleEndian.Uint64(e[8:]),
			length: binary.LittleEndian.Uint64(e[16:]),
		}
		if te.off < headerLen || te.length > tableOff || te.off > tableOff-te.length {
			return nil, fmt.Errorf("%w: section %d out of bounds", ErrCorrupt, te.kind)
		}
		s.sections = append(s.sections, te)
	}
	return s, nil
}

// Section returns a reader of the payload of the first section of the
// kind, and its length; ok is false when the snapshot has none.
func (s *Snapshot) Section(kind Kind) (r io.Reader, length uint64, ok bool) {
	for _, e := range s.sections {
		if e.kind == kind {
			return bufio.NewReaderSize(io.NewSectionReader(s.f, int64(e.off), int64(e.length)), 1<<20), e.length, true
		}
	}
	return nil, 0, false
}

// Close closes the file.
func (s *Snapshot) Close() error { return s.f.Close() }
