package realtime

import (
	"strconv"
	"unicode/utf8"
)

// Answers to votes are the messages a server writes most under votes over
// WebSocket: one each. They are encoded by hand, byte for byte as
// encoding/json encodes a voteResult (FuzzVoteResultJSON compares the two),
// at a fraction of its cost.

// message returns r as the message to write.
func (r *voteResult) message() *outMsg {
	return &outMsg{event: "vote_result", data: r.appendJSON(make([]byte, 0, 96+len(r.Ref)+len(r.Detail)))}
}

// appendJSON appends r's JSON encoding to b.
func (r *voteResult) appendJSON(b []byte) []byte {
	b = append(b, `{"type":`...)
	b = appendJSONString(b, r.Type)
	b = append(b, `,"ref":`...)
	b = appendJSONString(b, r.Ref)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(r.Status), 10)
	if r.VoteID != "" {
		b = append(b, `,"vote_id":`...)
		b = appendJSONString(b, r.VoteID)
	}
	if r.Code != "" {
		b = append(b, `,"code":`...)
		b = appendJSONString(b, r.Code)
	}
	if r.Detail != "" {
		b = append(b, `,"detail":`...)
		b = appendJSONString(b, r.Detail)
	}
	return append(b, '}')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string the way encoding/json
// writes it: HTML characters, U+2028 and U+2029 escaped, invalid UTF-8
// replaced by U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(append(b, s[start:i]...), `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(append(b, s[start:i]...), '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(append(b, s[start:]...), '"')
}
