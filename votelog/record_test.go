package votelog

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestRecordRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		rec  Record
	}{
		{"full", Record{
			VoteID: "v1", PollID: "p1", Options: []string{"a", "c"}, Voter: []byte("0123456789abcdef"),
			Time: time.Date(2026, 11, 22, 10, 0, 0, 123, time.UTC), Region: "eu", Country: "DE",
			Device: "mobile", Referrer: "news.example.com",
		}},
		{"anonymous", Record{VoteID: "v2", PollID: "p2", Options: []string{"b"}, Time: time.Unix(0, 0).UTC()}},
		{"unicode", Record{VoteID: "v3", PollID: "p3", Options: []string{"ä"}, Referrer: "例え.jp", Time: time.Unix(1, 0).UTC()}},
		{"keyed", Record{VoteID: "v4", PollID: "p4", Options: []string{"a"}, Voter: []byte{1}, Time: time.Unix(2, 0).UTC(), Keyed: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode(tt.rec.Append(nil))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(got, tt.rec) {
				t.Fatalf("round trip:\n got %#v\nwant %#v", got, tt.rec)
			}
		})
	}
}

// TestRecordGolden: the encodings of both record versions are fixed, and
// a record without flags encodes as version 1 did before version 3
// existed, so logs written before and after decode alike.
func TestRecordGolden(t *testing.T) {
	rec := Record{VoteID: "v1", PollID: "p1", Options: []string{"a", "c"}, Voter: []byte{1, 2}, Time: time.Unix(1700000000, 5).UTC(),
		Region: "eu", Country: "DE", Device: "mobile", Referrer: "r.example"}
	const v1 = "018a80d0e2c6bfce972f0276310270310201610163020102026575024445066d6f62696c6509722e6578616d706c65"
	keyed := rec
	keyed.Keyed = true
	for _, tt := range []struct {
		name string
		rec  Record
		hex  string
	}{
		{"version 1", rec, v1},
		{"version 3, keyed", keyed, "0301" + v1[2:]},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := hex.EncodeToString(tt.rec.Append(nil)); got != tt.hex {
				t.Fatalf("encoding\n got %s\nwant %s", got, tt.hex)
			}
			data, _ := hex.DecodeString(tt.hex)
			var d Decoder
			var got Record
			if err := d.Decode(&got, data); err != nil || !sameRecord(got, tt.rec) {
				t.Fatalf("decode = %#v, %v", got, err)
			}
		})
	}
}

// TestDecoderMatchesDecode: a Decoder decodes every record as Decode does,
// record after record into one reused Record, and what a caller kept of an
// earlier record (its strings, a copy of its slices) does not change.
func TestDecoderMatchesDecode(t *testing.T) {
	at := time.Date(2026, 11, 22, 10, 0, 0, 123, time.UTC)
	recs := []Record{
		{VoteID: "v1", PollID: "p1", Options: []string{"a", "c"}, Voter: []byte("0123456789abcdef"), Time: at,
			Region: "eu", Country: "DE", Device: "mobile", Referrer: "news.example.com"},
		{VoteID: "v2", PollID: "p2", Options: []string{"b"}, Time: at, Region: "eu", Country: "FR"},
		{VoteID: "v3", PollID: "p1", Options: []string{"a", "b", "c"}, Voter: []byte("k"), Time: at.Add(time.Second),
			Region: "eu", Country: "DE", Device: "mobile", Referrer: "news.example.com"},
		{VoteID: "v4", PollID: "p3", Time: at, Referrer: strings.Repeat("r", maxInternLen+1)},
		{VoteID: "v5", PollID: "p1", Options: []string{"ä"}, Voter: []byte("fedcba9876543210"), Time: at, Keyed: true},
		{VoteID: "v6", PollID: "p1", Options: []string{"a"}, Time: at},
	}
	var d Decoder
	var r Record
	var kept []Record
	for i, want := range recs {
		if err := d.Decode(&r, want.Append(nil)); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if !sameRecord(r, want) {
			t.Fatalf("record %d:\n got %#v\nwant %#v", i, r, want)
		}
		k := r
		k.Options, k.Voter = slices.Clone(r.Options), bytes.Clone(r.Voter)
		kept = append(kept, k)
	}
	for i := range recs {
		if !sameRecord(kept[i], recs[i]) {
			t.Fatalf("record %d changed once kept:\n got %#v\nwant %#v", i, kept[i], recs[i])
		}
	}
	// A bad record empties r and keeps its arrays for the next one.
	if err := d.Decode(&r, []byte("garbage")); !errors.Is(err, ErrBadRecord) {
		t.Fatalf("Decode(garbage) = %v, want ErrBadRecord", err)
	}
	if !sameRecord(r, Record{}) {
		t.Fatalf("after a bad record: %#v", r)
	}
}

// sameRecord compares records as Decode and Decoder make them: an empty
// Options or Voter may be nil or not.
func sameRecord(a, b Record) bool {
	if len(a.Options) == 0 && len(b.Options) == 0 {
		a.Options, b.Options = nil, nil
	}
	if len(a.Voter) == 0 && len(b.Voter) == 0 {
		a.Voter, b.Voter = nil, nil
	}
	return reflect.DeepEqual(a, b)
}

// TestDecoderAllocations: once a Decoder has seen a record's strings,
// decoding another like it allocates only its vote ID.
func TestDecoderAllocations(t *testing.T) {
	r := Record{VoteID: "AAAAAAAAAAAAAAAAAAAAAA", PollID: "k7Hq2mPz9c", Options: []string{"a", "b"}, Voter: bytes.Repeat([]byte{7}, 16),
		Time: time.Now(), Region: "eu", Country: "FR", Device: "mobile", Referrer: "news.example.com"}
	other := r
	other.PollID, other.Options, other.Country = "x9", []string{"c"}, "DE"
	data, otherData := r.Append(nil), other.Append(nil)
	var d Decoder
	var got Record
	allocs := testing.AllocsPerRun(1000, func() {
		_ = d.Decode(&got, data)
		_ = d.Decode(&got, otherData)
	})
	if allocs != 2 {
		t.Fatalf("%v allocations for two records, want 2 (their vote IDs)", allocs)
	}
}

// TestDecoderTableBounded: a Decoder keeps at most maxInterned strings, and
// decodes right past that.
func TestDecoderTableBounded(t *testing.T) {
	var d Decoder
	var r Record
	for i := range maxInterned + 10 {
		want := Record{VoteID: "v", PollID: "p" + strconv.Itoa(i), Options: []string{"a"}, Time: time.Unix(0, 0).UTC()}
		if err := d.Decode(&r, want.Append(nil)); err != nil || !sameRecord(r, want) {
			t.Fatalf("record %d: %v\n got %#v\nwant %#v", i, err, r, want)
		}
	}
	if len(d.strs) > maxInterned {
		t.Fatalf("%d strings kept, want at most %d", len(d.strs), maxInterned)
	}
}

func TestDecodeRejectsGarbage(t *testing.T) {
	valid := (&Record{VoteID: "v", PollID: "p", Options: []string{"a"}, Time: time.Unix(5, 0)}).Append(nil)
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"wrong version", append([]byte{9}, valid[1:]...)},
		{"truncated", valid[:len(valid)-1]},
		{"trailing", append(append([]byte{}, valid...), 0)},
		{"huge length", []byte{recordVersion, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}},
		{"too many options", []byte{recordVersion, 0, 0, 0, 0xff, 0x01}},
		{"options cut short", []byte{recordVersion, 0, 0, 0, 0x3f, 1, 'a'}},
		{"unknown flag", append([]byte{flagsVersion, 2}, valid[1:]...)},
		{"flags cut short", []byte{flagsVersion}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Decode(tt.data); !errors.Is(err, ErrBadRecord) {
				t.Fatalf("Decode = %v, want ErrBadRecord", err)
			}
			var d Decoder
			r := Record{Options: make([]string, 0, 8)}
			if err := d.Decode(&r, tt.data); !errors.Is(err, ErrBadRecord) {
				t.Fatalf("Decoder.Decode = %v, want ErrBadRecord", err)
			}
		})
	}
}

func TestShardIsStable(t *testing.T) {
	for _, id := range []string{"k7Hq2mPz9c", "x", ""} {
		s := Shard(id, DefaultShards)
		if s < 0 || s >= DefaultShards || s != Shard(id, DefaultShards) {
			t.Fatalf("Shard(%q) = %d", id, s)
		}
	}
	if got := VoteSubject(3, "abc"); got != "votes.3.abc" {
		t.Fatalf("VoteSubject = %q", got)
	}
}

// FuzzDecodeRecord: Decode and a Decoder never panic, they accept and
// reject the same bytes and agree on the record, and whatever they accept
// decodes again to the same record once encoded.
func FuzzDecodeRecord(f *testing.F) {
	f.Add((&Record{VoteID: "v", PollID: "p", Options: []string{"a", "b"}, Voter: []byte{1, 2}, Time: time.Unix(7, 0)}).Append(nil))
	f.Add([]byte{recordVersion})
	f.Add((&Record{VoteID: "k", PollID: "p", Options: []string{"a"}, Time: time.Unix(8, 0), Keyed: true}).Append(nil))
	f.Add([]byte{})
	seen := (&Record{VoteID: "s", PollID: "p", Options: []string{"a", "b", "c"}, Voter: []byte("0123456789abcdef"),
		Time: time.Unix(9, 0), Region: "eu", Country: "FR", Device: "mobile", Referrer: "r"}).Append(nil)
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Decode(data)
		// A Decoder that decoded another record first: reused arrays, a warm table.
		var d Decoder
		var dr Record
		if err := d.Decode(&dr, seen); err != nil {
			t.Fatal(err)
		}
		derr := d.Decode(&dr, data)
		if (err == nil) != (derr == nil) {
			t.Fatalf("Decode: %v, Decoder: %v", err, derr)
		}
		if err != nil {
			if !errors.Is(err, ErrBadRecord) || !errors.Is(derr, ErrBadRecord) {
				t.Fatalf("errors %v and %v, want ErrBadRecord", err, derr)
			}
			return
		}
		if !sameRecord(r, dr) {
			t.Fatalf("Decode and Decoder differ:\n%#v\n%#v", r, dr)
		}
		again, err := Decode(r.Append(nil))
		if err != nil || !reflect.DeepEqual(again, r) {
			t.Fatalf("re-decode of accepted record: %v\n%#v\n%#v", err, again, r)
		}
	})
}
