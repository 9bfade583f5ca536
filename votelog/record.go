package votelog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Record is one vote as stored in the log. It carries no raw identity: Voter
// is a keyed hash of the voter (device id, token subject or client IP),
// empty when the vote had none.
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
}

const (
	recordVersion  = 1
	maxFieldLen    = 4096
	maxRecordOpts  = 64
	errRecordShort = "votelog: record truncated"
)

// ErrBadRecord is returned by Decode for bytes that are not a record.
var ErrBadRecord = errors.New("votelog: bad record")

// Append appends the encoding of r to b and returns the extended buffer.
func (r *Record) Append(b []byte) []byte {
	b = append(b, recordVersion)
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
	d := decoder{b: data}
	var r Record
	if v := d.byte(); v != recordVersion {
		return r, fmt.Errorf("%w: version %d", ErrBadRecord, v)
	}
	r.Time = time.Unix(0, d.varint()).UTC()
	r.VoteID = d.string()
	r.PollID = d.string()
	n := d.uvarint()
	if n > maxRecordOpts {
		return r, fmt.Errorf("%w: %d options", ErrBadRecord, n)
	}
	if n > 0 {
		r.Options = make([]string, n)
		for i := range r.Options {
			r.Options[i] = d.string()
		}
	}
	if v := d.bytes(); len(v) > 0 {
		r.Voter = append([]byte(nil), v...)
	}
	r.Region = d.string()
	r.Country = d.string()
	r.Device = d.string()
	r.Referrer = d.string()
	if d.err != nil {
		return Record{}, d.err
	}
	if len(d.b) != 0 {
		return Record{}, fmt.Errorf("%w: %d trailing bytes", ErrBadRecord, len(d.b))
	}
	return r, nil
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

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad uvarint")
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

func (d *decoder) string() string {
	return string(d.bytes())
}
