package realtime

import (
	"strconv"

	"github.com/pollcast/pollcast/internal/jsonscan"
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
	b = jsonscan.AppendString(b, r.Type)
	b = append(b, `,"ref":`...)
	b = jsonscan.AppendString(b, r.Ref)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(r.Status), 10)
	if r.VoteID != "" {
		b = append(b, `,"vote_id":`...)
		b = jsonscan.AppendString(b, r.VoteID)
	}
	if r.Code != "" {
		b = append(b, `,"code":`...)
		b = jsonscan.AppendString(b, r.Code)
	}
	if r.Detail != "" {
		b = append(b, `,"detail":`...)
		b = jsonscan.AppendString(b, r.Detail)
	}
	return append(b, '}')
}
