package web

import (
	"bytes"

	"github.com/gin-gonic/gin"

	"github.com/pollcast/pollcast/internal/jsonscan"
)

// The vote and batch bodies are the hottest JSON pollcast reads. They are
// decoded by a fast path (jsonscan) that handles the well-formed bodies
// clients send — the keys exactly as documented, strings, arrays of
// strings, null — and gives up on anything else: then the body is decoded
// again by unmarshalBody (encoding/json), which gives the value or the
// exact error it always gave. The fast path never accepts what
// encoding/json rejects and produces the same values when both accept;
// FuzzDecodeVote and FuzzDecodeBatch compare the two on arbitrary input.

// batchInput is the body of POST /v1/votes/batch.
type batchInput struct {
	Votes []batchItem `json:"votes"`
}

// decodeVote reads the body of a single vote into in like decodeJSON would.
func decodeVote(c *gin.Context, in *voteInput) error {
	body, err := readBody(c, maxBody, false)
	if err != nil {
		return err
	}
	return unmarshalVote(body, in)
}

// decodeBatch reads the body of a batch of votes into in like decodeJSON
// would.
func decodeBatch(c *gin.Context, in *batchInput) error {
	body, err := readBody(c, maxBatchBody, true) // the caller is authenticated
	if err != nil {
		return err
	}
	return unmarshalBatch(body, in)
}

func unmarshalVote(body []byte, in *voteInput) error {
	var s jsonscan.Scanner
	s.Reset(body)
	if scanVote(&s, in) {
		return nil
	}
	// A variable of its own, so that only this path moves one to the heap.
	var slow voteInput
	err := unmarshalBody(body, &slow)
	*in = slow
	return err
}

func unmarshalBatch(body []byte, in *batchInput) error {
	var s jsonscan.Scanner
	s.Reset(body)
	if scanBatch(&s, body, in) {
		return nil
	}
	// A variable of its own, so that only this path moves one to the heap.
	var slow batchInput
	err := unmarshalBody(body, &slow)
	*in = slow
	return err
}

// scanVote is the fast path of unmarshalVote: it reports whether it
// handled the body.
func scanVote(s *jsonscan.Scanner, in *voteInput) bool {
	return s.Object(func(key []byte) bool {
		var ok bool
		switch string(key) {
		case "options":
			in.Options, ok = s.Strings(nil, nil)
		case "voter":
			ok = s.StringInto(&in.Voter, "")
		case "idempotency_key":
			ok = s.StringInto(&in.IdempotencyKey, "")
		case "referrer":
			ok = s.StringInto(&in.Referrer, "")
		default:
			return false // unknown, or a known key spelt in another case
		}
		return ok
	}) && s.End()
}

// scanBatch is the fast path of unmarshalBatch: it reports whether it
// handled the body.
func scanBatch(s *jsonscan.Scanner, body []byte, in *batchInput) bool {
	return s.Object(func(key []byte) bool {
		// A second "votes" would be decoded into the first one's
		// elements by encoding/json: not handled.
		if string(key) != "votes" || in.Votes != nil || !s.Consume('[') {
			return false
		}
		// Each vote is an object: the count of '{' bounds the votes.
		n := min(bytes.Count(body, []byte{'{'}), maxBatchVotes+1)
		votes := make([]batchItem, 0, n)
		// The votes' options share backing arrays.
		opts := make([]string, 0, n)
		var prev *batchItem
		for j := 0; ; j++ {
			end, ok := s.Element(j)
			if !ok {
				return false
			}
			if end {
				break
			}
			if len(votes) < cap(votes) {
				votes = votes[:len(votes)+1] // zeroed by make
			} else {
				votes = append(votes, batchItem{})
			}
			v := &votes[len(votes)-1]
			if !scanBatchItem(s, v, prev, &opts) {
				return false
			}
			prev = v
		}
		in.Votes = votes
		return true
	}) && s.End()
}

// scanBatchItem reads one vote of a batch into v. Strings equal to those
// of the vote before, prev (nil for the first vote), are shared with it.
// The options are appended to *opts when there is room.
func scanBatchItem(s *jsonscan.Scanner, v, prev *batchItem, opts *[]string) bool {
	p := prev
	if p == nil {
		p = &batchItem{}
	}
	return s.Object(func(key []byte) bool {
		var ok bool
		switch string(key) {
		case "poll_id":
			ok = s.StringInto(&v.PollID, p.PollID)
		case "options":
			var o []string
			o, ok = s.Strings(p.Options, *opts)
			if ok && o != nil {
				v.Options = o[len(*opts):len(o):len(o)]
				*opts = o
			} else {
				v.Options = nil
			}
		case "voter":
			ok = s.StringInto(&v.Voter, "")
		case "idempotency_key":
			ok = s.StringInto(&v.IdempotencyKey, "")
		case "referrer":
			ok = s.StringInto(&v.Referrer, p.Referrer)
		case "ip":
			ok = s.StringInto(&v.IP, p.IP)
		default:
			return false // unknown, or a known key spelt in another case
		}
		return ok
	})
}
