package votelog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// cloneRecord copies what a Decoder reuses from record to record.
func cloneRecord(r Record) Record {
	r.Options = append([]string(nil), r.Options...)
	r.Voter = append([]byte(nil), r.Voter...)
	return r
}

func packRecords(n int) []Record {
	recs := make([]Record, n)
	for i := range recs {
		recs[i] = Record{VoteID: fmt.Sprintf("v%d", i), PollID: "p", Options: []string{"a", "b"}[:1+i%2],
			Voter: []byte(fmt.Sprintf("%016d", i)), Time: time.Unix(int64(i), 5).UTC(), Region: "eu",
			Country: "DE", Device: "mobile", Referrer: "news.example.com"}
	}
	return recs
}

// each decodes every vote of a message with a fresh Decoder.
func each(t *testing.T, data []byte) (recs []Record, errs []error) {
	t.Helper()
	var d Decoder
	var r Record
	if err := d.Each(&r, data, func(i int, err error) error {
		if i != len(recs) {
			t.Fatalf("index %d after %d votes", i, len(recs))
		}
		recs, errs = append(recs, cloneRecord(r)), append(errs, err)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return recs, errs
}

func TestMessageRoundTrip(t *testing.T) {
	for _, n := range []int{1, 2, 7, MaxPack} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			want := packRecords(n)
			data := AppendMessage([]byte("prefix"), want)[len("prefix"):]
			got, errs := each(t, data)
			if len(got) != n {
				t.Fatalf("%d votes, want %d", len(got), n)
			}
			for i := range got {
				if errs[i] != nil || !sameRecord(got[i], want[i]) {
					t.Fatalf("vote %d: %v\n got %#v\nwant %#v", i, errs[i], got[i], want[i])
				}
			}
		})
	}
	// A message of one vote is the single-vote encoding older readers know.
	one := packRecords(1)
	if string(AppendMessage(nil, one)) != string(one[0].Append(nil)) {
		t.Fatal("a one-vote message is not Record.Append's encoding")
	}
}

func TestBadPacks(t *testing.T) {
	good := AppendMessage(nil, packRecords(3))
	badVote := []byte{packVersion, 2}
	for _, part := range [][]byte{packRecords(1)[0].Append(nil), []byte("junk")} {
		badVote = binary.AppendUvarint(badVote, uint64(len(part)))
		badVote = append(badVote, part...)
	}
	tests := []struct {
		name    string
		data    []byte
		decoded int // votes that decode
		calls   int
	}{
		{"empty", nil, 0, 1},
		{"zero votes", []byte{packVersion, 0}, 0, 1},
		{"too many votes", binary.AppendUvarint([]byte{packVersion}, MaxPack+1), 0, 1},
		{"truncated", good[:len(good)-3], 0, 1},
		{"trailing bytes", append(append([]byte(nil), good...), 0), 0, 1},
		{"length past the end", []byte{packVersion, 1, 200, 1}, 0, 1},
		{"one bad vote of two", badVote, 1, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs := each(t, tt.data)
			decoded := 0
			for _, err := range errs {
				if err == nil {
					decoded++
				} else if !errors.Is(err, ErrBadRecord) {
					t.Fatalf("error %v does not wrap ErrBadRecord", err)
				}
			}
			if len(errs) != tt.calls || decoded != tt.decoded {
				t.Fatalf("%d calls, %d decoded; want %d, %d", len(errs), decoded, tt.calls, tt.decoded)
			}
		})
	}
}

// TestEachStopsOnError: fn's error ends the walk and comes back.
func TestEachStopsOnError(t *testing.T) {
	stop := errors.New("stop")
	var d Decoder
	var r Record
	calls := 0
	err := d.Each(&r, AppendMessage(nil, packRecords(5)), func(i int, err error) error {
		calls++
		if i == 1 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 2 {
		t.Fatalf("err %v after %d calls", err, calls)
	}
}

// FuzzEachMessage: walking a message never panics; every vote it yields
// either decodes or fails with ErrBadRecord; and a message rebuilt from the
// votes that decoded walks to the same votes.
func FuzzEachMessage(f *testing.F) {
	f.Add(AppendMessage(nil, packRecords(3)))
	f.Add(AppendMessage(nil, packRecords(1)))
	f.Add([]byte{packVersion, 1, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		var d Decoder
		var r Record
		var ok []Record
		n := 0
		if err := d.Each(&r, data, func(i int, err error) error {
			if i != n {
				t.Fatalf("index %d after %d calls", i, n)
			}
			n++
			if err != nil {
				if !errors.Is(err, ErrBadRecord) {
					t.Fatalf("error %v does not wrap ErrBadRecord", err)
				}
				return nil
			}
			ok = append(ok, cloneRecord(r))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if n == 0 || n > MaxPack {
			t.Fatalf("%d calls for one message", n)
		}
		if len(ok) == 0 {
			return
		}
		var again []Record
		if err := d.Each(&r, AppendMessage(nil, ok), func(_ int, err error) error {
			if err != nil {
				t.Fatalf("rebuilt message: %v", err)
			}
			again = append(again, cloneRecord(r))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if len(again) != len(ok) {
			t.Fatalf("%d votes rebuilt into %d", len(ok), len(again))
		}
		for i := range ok {
			if !sameRecord(ok[i], again[i]) {
				t.Fatalf("vote %d changed:\n%#v\n%#v", i, ok[i], again[i])
			}
		}
	})
}

func TestSizeBoundsTheEncoding(t *testing.T) {
	for _, r := range append(packRecords(3), Record{}, Record{Options: []string{"", ""}, Referrer: strings.Repeat("r", 300)}) {
		if n, size := len(r.Append(nil)), r.Size(); n > size || size > n+10*12 {
			t.Fatalf("Size %d for an encoding of %d bytes", size, n)
		}
	}
}
