package snapshot

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func saveOne(tb testing.TB, d *Dir, need uint64, payload string) string {
	tb.Helper()
	path, err := d.Save(need, []Section{
		{Kind: KindTally, Write: func(w io.Writer) error {
			e := NewEncoder(w)
			e.String(payload)
			e.U64(need)
			return e.Err()
		}},
		{Kind: 99, Write: func(w io.Writer) error { _, err := w.Write([]byte("a kind nobody reads")); return err }},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return path
}

func readOne(tb testing.TB, path string) (string, uint64, error) {
	tb.Helper()
	s, err := Open(path)
	if err != nil {
		return "", 0, err
	}
	defer s.Close()
	r, n, ok := s.Section(KindTally)
	if !ok {
		tb.Fatal("no tally section")
	}
	d := NewDecoder(r, n)
	payload, need := d.String(), d.U64()
	return payload, need, d.Err()
}

func TestSaveOpen(t *testing.T) {
	d, err := OpenDir(t.TempDir(), Config{Keep: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := d.Need(); ok {
		t.Fatal("Need of an empty directory")
	}
	var paths []string
	for i := range 3 {
		paths = append(paths, saveOne(t, d, uint64(10*(i+1)), "counters"))
	}
	list, err := d.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0] != paths[2] || list[1] != paths[1] {
		t.Fatalf("kept %v, want the newest two of %v", list, paths)
	}
	if need, ok := d.Need(); !ok || need != 20 {
		t.Fatalf("Need = %d, %v; want 20, the oldest kept", need, ok)
	}
	payload, need, err := readOne(t, list[0])
	if err != nil || payload != "counters" || need != 30 {
		t.Fatalf("read %q %d %v", payload, need, err)
	}
	s, err := Open(list[0])
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Need != 30 {
		t.Fatalf("header need %d", s.Need)
	}
	if _, _, ok := s.Section(KindVoters); ok {
		t.Fatal("a section that was not written")
	}
}

// TestOpenRefusesDamage: every truncation and every flipped byte of a
// snapshot is detected.
func TestOpenRefusesDamage(t *testing.T) {
	dir := t.TempDir()
	d, err := OpenDir(dir, Config{})
	if err != nil {
		t.Fatal(err)
	}
	path := saveOne(t, d, 7, "some counters worth keeping")
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.pcs")
	try := func(b []byte) error {
		if err := os.WriteFile(bad, b, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(bad)
		if err == nil {
			s.Close()
		}
		return err
	}
	if err := try(good); err != nil {
		t.Fatalf("an intact copy: %v", err)
	}
	for n := range len(good) {
		if err := try(good[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated to %d of %d bytes: %v", n, len(good), err)
		}
	}
	for i := range good {
		b := append([]byte(nil), good...)
		b[i] ^= 0x10
		// A flipped version byte names another version: refused as well.
		if err := try(b); !errors.Is(err, ErrCorrupt) && !(i >= 8 && i < 12 && errors.Is(err, ErrVersion)) {
			t.Fatalf("byte %d flipped: %v", i, err)
		}
	}
}

// TestOpenRefusesOtherVersions: an intact file of another format version
// (its checksum right) is refused with ErrVersion, and Need leaves it out:
// it cannot be loaded.
func TestOpenRefusesOtherVersions(t *testing.T) {
	dir := t.TempDir()
	d, err := OpenDir(dir, Config{})
	if err != nil {
		t.Fatal(err)
	}
	current := saveOne(t, d, 20, "counters")
	b, err := os.ReadFile(current)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []uint32{Version - 1, Version + 1} {
		binary.LittleEndian.PutUint32(b[8:], v)
		binary.LittleEndian.PutUint64(b[24:], 5) // a lower need, which must not count
		binary.LittleEndian.PutUint32(b[len(b)-8:], crc32.Checksum(b[:len(b)-8], castagn))
		other := filepath.Join(dir, fmt.Sprintf("snapshot-%020d.pcs", v)) // older than current by its name
		if err := os.WriteFile(other, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if s, err := Open(other); !errors.Is(err, ErrVersion) {
			if err == nil {
				s.Close()
			}
			t.Fatalf("a file of version %d: Open = %v, want %v", v, err, ErrVersion)
		}
		if need, ok := d.Need(); !ok || need != 20 {
			t.Fatalf("Need beside a file of version %d = %d, %v; want 20 of the current file", v, need, ok)
		}
		if err := os.Remove(other); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOpenDirRemovesTemporaryFiles(t *testing.T) {
	dir := t.TempDir()
	tmp := filepath.Join(dir, ".snapshot-123.tmp")
	if err := os.WriteFile(tmp, []byte("half written"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenDir(dir, Config{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temporary file still there: %v", err)
	}
}

func TestDecoderBounds(t *testing.T) {
	tests := []struct {
		name    string
		payload []byte
		read    func(d *Decoder)
		want    error
	}{
		{"count past the end", []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}, func(d *Decoder) { d.Count(16) }, ErrShort},
		{"value past the end", []byte{1, 2, 3}, func(d *Decoder) { d.U64() }, ErrShort},
		{"exact", []byte{1, 0, 0, 0, 0, 0, 0, 0, 9}, func(d *Decoder) { d.Raw(make([]byte, d.Count(1))) }, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDecoder(bytesReader(tc.payload), uint64(len(tc.payload)))
			tc.read(d)
			if err := d.Err(); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

type byteReader struct{ b []byte }

func bytesReader(b []byte) io.Reader { return &byteReader{b} }

func (r *byteReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}
