package votelog

import (
	"errors"
	"reflect"
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Decode(tt.data); !errors.Is(err, ErrBadRecord) {
				t.Fatalf("Decode = %v, want ErrBadRecord", err)
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

// FuzzDecodeRecord: Decode never panics, and whatever it accepts encodes
// back to the same bytes.
func FuzzDecodeRecord(f *testing.F) {
	f.Add((&Record{VoteID: "v", PollID: "p", Options: []string{"a", "b"}, Voter: []byte{1, 2}, Time: time.Unix(7, 0)}).Append(nil))
	f.Add([]byte{recordVersion})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Decode(data)
		if err != nil {
			return
		}
		again, err := Decode(r.Append(nil))
		if err != nil || !reflect.DeepEqual(again, r) {
			t.Fatalf("re-decode of accepted record: %v\n%#v\n%#v", err, again, r)
		}
	})
}
