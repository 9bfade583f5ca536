package snapshot

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Encoder writes the fixed-width little-endian values of a section's
// payload. The first error sticks: check Err once at the end.
type Encoder struct {
	w   io.Writer
	buf []byte
	err error
}

// NewEncoder returns an Encoder writing to w (a Section's writer, which
// buffers).
func NewEncoder(w io.Writer) *Encoder { return &Encoder{w: w, buf: make([]byte, 0, 64)} }

func (e *Encoder) flush() {
	if e.err == nil {
		_, e.err = e.w.Write(e.buf)
	}
	e.buf = e.buf[:0]
}

// U64 writes v.
func (e *Encoder) U64(v uint64) {
	e.buf = binary.LittleEndian.AppendUint64(e.buf, v)
	e.flush()
}

// Bytes writes the length of b, then b.
func (e *Encoder) Bytes(b []byte) {
	e.buf = binary.LittleEndian.AppendUint64(e.buf, uint64(len(b)))
	e.flush()
	e.Raw(b)
}

// String writes s as Bytes does.
func (e *Encoder) String(s string) {
	e.buf = binary.LittleEndian.AppendUint64(e.buf, uint64(len(s)))
	e.buf = append(e.buf, s...)
	e.flush()
}

// Raw writes b as it is: fixed-size records whose count was written before.
func (e *Encoder) Raw(b []byte) {
	if e.err == nil && len(b) > 0 {
		_, e.err = e.w.Write(b)
	}
}

// Err returns the first error.
func (e *Encoder) Err() error { return e.err }

// Decoder reads what an Encoder wrote, from a section of a verified
// snapshot of a known length. The first error sticks: values read after
// it are zero. Counts are checked against the bytes left, so that no
// count makes it allocate more than the section holds.
type Decoder struct {
	r    io.Reader
	left uint64
	buf  [8]byte
	err  error
}

// ErrShort is the Decoder's error when a section ends before its values.
var ErrShort = errors.New("snapshot: section shorter than its contents")

// NewDecoder returns a Decoder of the length bytes of r.
func NewDecoder(r io.Reader, length uint64) *Decoder { return &Decoder{r: r, left: length} }

func (d *Decoder) take(n uint64) bool {
	if d.err != nil {
		return false
	}
	if n > d.left {
		d.err = ErrShort
		return false
	}
	d.left -= n
	return true
}

// U64 reads a value.
func (d *Decoder) U64() uint64 {
	if !d.take(8) {
		return 0
	}
	if _, err := io.ReadFull(d.r, d.buf[:]); err != nil {
		d.err = fmt.Errorf("snapshot: read: %w", err)
		return 0
	}
	return binary.LittleEndian.Uint64(d.buf[:])
}

// Count reads a count of records of size bytes each (at least 1) and
// checks that the section has room for them.
func (d *Decoder) Count(size uint64) int {
	n := d.U64()
	if d.err == nil && (size == 0 || n > d.left/size) {
		d.err = fmt.Errorf("%w: %d records of %d bytes in %d", ErrShort, n, size, d.left)
		return 0
	}
	return int(n)
}

// Bytes reads what Encoder.Bytes wrote.
func (d *Decoder) Bytes() []byte {
	n := d.Count(1)
	b := make([]byte, n)
	d.Raw(b)
	return b
}

// String reads what Encoder.String wrote.
func (d *Decoder) String() string { return string(d.Bytes()) }

// Raw fills b.
func (d *Decoder) Raw(b []byte) {
	if !d.take(uint64(len(b))) {
		clear(b)
		return
	}
	if _, err := io.ReadFull(d.r, b); err != nil {
		d.err = fmt.Errorf("snapshot: read: %w", err)
	}
}

// Err returns the first error, and ErrShort's like when bytes are left
// over: a section is read whole or not at all.
func (d *Decoder) Err() error {
	if d.err == nil && d.left != 0 {
		return fmt.Errorf("snapshot: %d bytes left over in a section", d.left)
	}
	return d.err
}
