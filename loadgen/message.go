package loadgen

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf8"

	"github.com/pollcast/pollcast/internal/jsonscan"
)

// What the load generator reads of the server's live messages: the answers
// to the ws scenario's votes, and the type and total of the results the
// viewers follow. Both are read with internal/jsonscan, to leave the CPU
// to the server being measured; a message jsonscan does not take (a key
// with an escape, say) is decoded again by encoding/json, so that what is
// read is always what encoding/json reads. FuzzLiveMessages compares the
// two on arbitrary input.

// wsAnswer is what the ws scenario reads of a live message.
type wsAnswer struct {
	typ string // "" when not a string
	// ref is the ref of a vote_result, when it is a decimal integer as
	// this client writes them (refOK); hasRef says it was a string.
	ref           int64
	refOK, hasRef bool
	// status is set when statusOK: an integer from 0 to 999.
	status   int
	statusOK bool
	code     string // "" when not a string
}

var errBadMessage = errors.New("not a JSON object")

// answerKeys are the keys decodeAnswer reads.
var answerKeys = [...]string{"type", "ref", "status", "code"}

// decodeAnswer reads type, ref, status and code from a message, a JSON
// object, as encoding/json reads one into a map: keys match exactly, the
// last of a duplicate key wins, other values are checked and passed over.
// It allocates only for a code, a type the server sends rarely, or a
// message jsonscan does not take.
func decodeAnswer(data []byte) (wsAnswer, error) {
	var a wsAnswer
	var s jsonscan.Scanner
	s.Reset(data)
	if s.Object(func(key []byte) bool { return a.member(&s, key) }) && s.End() {
		return a, nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(data, &m) != nil || m == nil {
		return wsAnswer{}, errBadMessage
	}
	a = wsAnswer{}
	for _, key := range answerKeys {
		if v, ok := m[key]; ok {
			s.Reset(v)
			if !a.member(&s, []byte(key)) || !s.End() {
				return wsAnswer{}, errBadMessage // not met: v is one valid value
			}
		}
	}
	return a, nil
}

// member reads the value of key into a, or passes over it.
func (a *wsAnswer) member(s *jsonscan.Scanner, key []byte) bool {
	switch string(key) {
	case "type":
		a.typ = ""
		if v, ok := s.String(); ok {
			a.typ = messageType(v)
			return true
		}
	case "ref":
		a.ref, a.refOK, a.hasRef = 0, false, false
		if v, ok := s.String(); ok {
			a.hasRef = true
			a.ref, a.refOK = parseRef(v)
			return true
		}
	case "status":
		a.status, a.statusOK = 0, false
		if v, ok := s.Number(); ok {
			a.status, a.statusOK = parseStatus(v)
			return true
		}
	case "code":
		a.code = ""
		if v, ok := s.String(); ok {
			a.code = string(v)
			return true
		}
	}
	return s.Skip() // another key, or a value of another kind
}

// messageType returns v as a string, without a copy for the types of the
// messages that come most.
func messageType(v []byte) string {
	switch string(v) {
	case "vote_result":
		return "vote_result"
	case "results":
		return "results"
	}
	return string(v)
}

// parseRef parses a ref as this client writes them: a decimal integer
// from 1.
func parseRef(v []byte) (int64, bool) {
	n, ok := parsePlain(v, 18)
	return n, ok && n > 0
}

// parseStatus parses a status: an integer from 0 to 999.
func parseStatus(v []byte) (int, bool) {
	n, ok := parsePlain(v, 3)
	return int(n), ok
}

// parsePlain parses an integer of at most digits decimal digits, written
// plainly: no sign, no leading zero, no fraction or exponent.
func parsePlain(v []byte, digits int) (int64, bool) {
	if len(v) == 0 || len(v) > digits || v[0] == '0' && len(v) > 1 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// liveMessage returns the type of a live message and its total as
// encoding/json decodes them into a struct of the two, or "", 0 when it
// cannot.
func liveMessage(data []byte) (string, int64) {
	var typ string
	var total int64
	var s jsonscan.Scanner
	s.Reset(data)
	if s.Object(func(key []byte) bool {
		switch string(key) {
		case "type":
			return s.StringInto(&typ, "results")
		case "total":
			return s.Null() || readInt(&s, &total)
		}
		// encoding/json passes over other keys, but takes these two in
		// any case: a key that might be one of them is not handled.
		return !foldsToField(key) && s.Skip()
	}) && s.End() {
		return typ, total
	}
	var m struct {
		Type  string `json:"type"`
		Total int64  `json:"total"`
	}
	if json.Unmarshal(data, &m) != nil {
		return "", 0
	}
	return m.Type, m.Total
}

// readInt reads a number into *n if it is one encoding/json decodes into
// an int64.
func readInt(s *jsonscan.Scanner, n *int64) bool {
	v, ok := s.Number()
	if !ok {
		return false
	}
	i, err := strconv.ParseInt(string(v), 10, 64)
	*n = i
	return err == nil
}

// foldsToField reports whether encoding/json might match key to "type" or
// "total", the fields of liveMessage's struct: in any case, and for a key
// that is not ASCII, by Unicode folding.
func foldsToField(key []byte) bool {
	for _, c := range key {
		if c >= utf8.RuneSelf {
			return true
		}
	}
	return bytes.EqualFold(key, []byte("type")) || bytes.EqualFold(key, []byte("total"))
}
