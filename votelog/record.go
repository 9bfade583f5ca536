package votelog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Record is one vote as stored in the log. It carries no raw identity: Voter
// is a keyed hash of the voter (device id, token subject or client IP),
// empty when the vote had none. Keyed says VoteID derives from the
// client's idempotency key: a retry of the vote carries the same ID, and
// ingest recognises it for a while after Time.
type Record struct {
	VoteID   string
	PollID   string
	Options  []string
	Voter    []byte
	Time     time.Time
	Region   string
	Country  string
	Device   string
	Referrer string
	Keyed    bool
}

// A record is encoded as its version byte and its fields. Version 1 is the
// first format; version 3 (2 is a pack, see pack.go) is a flags uvarint
// followed by version 1's fields. Append writes version 1 for a record
// with no flag set, so such records encode as they always did.
const (
	recordVersion  = 1
	flagsVersion   = 3
	flagKeyed      = 1 << 0
	knownFlags     = flagKeyed
	maxFieldLen    = 4096
	maxRecordOpts  = 64
	errRecordShort = "votelog: record truncated"
)

// ErrBadRecord is returned by Decode for bytes that are not a record.
var ErrBadRecord = errors.New("votelog: bad record")

// Append appends the encoding of r to b and returns the extended buffer.
func (r *Record) Append(b []byte) []byte {
	if r.Keyed {
		b = append(b, flagsVersion, flagKeyed)
	} else {
		b = append(b, recordVersion)
	}
	b = binary.AppendVarint(b, r.Time.UnixNano())
	b = appendString(b, r.VoteID)
	b = appendString(b, r.PollID)
	b = binary.AppendUvarint(b, uint64(len(r.Options)))
	for _, o := range r.Options {
		b = appendString(b, o)
	}
	b = binary.AppendUvarint(b, uint64(len(r.Voter)))
	b = append(b, r.Voter...)
	b = appendString(b, r.Region)
	b = appendString(b, r.Country)
	b = appendString(b, r.Device)
	b = appendString(b, r.Referrer)
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// Decode parses a record. It never panics on bad input; it returns an error
// wrapping ErrBadRecord instead. The record does not alias data.
func Decode(data []byte) (Record, error) {
	var r Record
	if err := decodeInto(&r, data, nil); err != nil {
		return Record{}, err
	}
	return r, nil
}

// Decoder decodes records as Decode does, into a Record it is handed again
// and again, without allocating for what repeats from one record to the
// next: for readers that fold a long run of records, such as the tally's
// rebuild of the whole log at start.
//
// The strings of a record but VoteID (the poll ID, the options, region,
// country, device and referrer) are taken from a table of the strings seen
// before, so a string seen again costs no allocation; the record's Options
// and Voter reuse their backing arrays. Only VoteID is a new string each
// time. The zero value is ready to use. A Decoder is not safe for concurrent
// use.
type Decoder struct {
	strs map[string]string // interned strings, emptied when full
	last [4]string         // the last region, country, device and referrer
}

const (
	// maxInterned bounds the strings a Decoder keeps; past it, the table
	// starts over, so a log with ever new poll IDs costs bounded memory.
	maxInterned = 1 << 14
	// maxInternLen: longer strings are allocated each time, not kept.
	maxInternLen = 256
)

// Decode parses data into r as the package's Decode does and, like it, never
// panics on bad input. Options and Voter reuse r's backing arrays: they
// change with the next Decode into r, so copy them to keep them (either may
// be empty and not nil). The strings may be kept; r does not alias data. On
// error r is emptied and the error wraps ErrBadRecord.
func (d *Decoder) Decode(r *Record, data []byte) error {
	if err := decodeInto(r, data, d); err != nil {
		*r = Record{Options: r.Options[:0], Voter: r.Voter[:0]}
		return err
	}
	return nil
}

// intern returns b as a string, from the table when it was seen before.
func (d *Decoder) intern(b []byte) string {
	if s, ok := d.strs[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(b) > maxInternLen {
		return s
	}
	if d.strs == nil {
		d.strs = make(map[string]string)
	} else if len(d.strs) >= maxInterned {
		clear(d.strs)
	}
	d.strs[s] = s
	return s
}

// repeat returns b as a string: the one of the previous record in field i
// (0 region, 1 country, 2 device, 3 referrer) when it is the same, which
// is the common case, else the interned one.
func (d *Decoder) repeat(i int, b []byte) string {
	if string(b) != d.last[i] {
		d.last[i] = d.intern(b)
	}
	return d.last[i]
}

// decodeInto decodes data into r: allocating every string when d is nil
// (Decode), through d's table otherwise. r's slices are reused when they
// have room.
func decodeInto(r *Record, data []byte, d *Decoder) error {
	dec := decoder{b: data}
	r.Keyed = false
	switch v := dec.byte(); v {
	case recordVersion:
	case flagsVersion:
		flags := dec.uvarint()
		if flags&^knownFlags != 0 {
			return fmt.Errorf("%w: unknown flags %#x", ErrBadRecord, flags)
		}
		r.Keyed = flags&flagKeyed != 0
	default:
		return fmt.Errorf("%w: version %d", ErrBadRecord, v)
	}
	r.Time = time.Unix(0, dec.varint()).UTC()
	r.VoteID = string(dec.bytes())
	r.PollID = d.str(dec.bytes())
	n := dec.uvarint()
	if n > maxRecordOpts {
		return fmt.Errorf("%w: %d options", ErrBadRecord, n)
	}
	r.Options = r.Options[:0]
	if n > 0 {
		if cap(r.Options) < int(n) {
			r.Options = make([]string, 0, n)
		}
		for range n {
			r.Options = append(r.Options, d.str(dec.bytes()))
		}
	}
	r.Voter = append(r.Voter[:0], dec.bytes()...)
	r.Region = d.field(0, dec.bytes())
	r.Country = d.field(1, dec.bytes())
	r.Device = d.field(2, dec.bytes())
	r.Referrer = d.field(3, dec.bytes())
	if dec.err != nil {
		return dec.err
	}
	if len(dec.b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrBadRecord, len(dec.b))
	}
	return nil
}

// str returns b as a string: interned, or allocated when d is nil.
func (d *Decoder) str(b []byte) string {
	if d == nil {
		return string(b)
	}
	return d.intern(b)
}

// field is str for the fields that tend to repeat from record to record.
func (d *Decoder) field(i int, b []byte) string {
	if d == nil {
		return string(b)
	}
	return d.repeat(i, b)
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(msg string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrBadRecord, msg)
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail(errRecordShort)
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

// varint reads what binary.AppendVarint wrote: a zig-zag encoded uvarint.
func (d *decoder) varint() int64 {
	u := d.uvarint()
	if u&1 != 0 {
		return ^int64(u >> 1)
	}
	return int64(u >> 1)
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if n > maxFieldLen || n > uint64(len(d.b)) {
		d.fail(errRecordShort)
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}
