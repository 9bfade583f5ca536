package loadgen

import (
	"testing"
)

func TestLiveMessage(t *testing.T) {
	tests := []struct {
		name, data string
		typ        string
		total      int64
	}{
		{"as the server writes it", `{"type":"results","poll_id":"p","total":1532,"voters":3,"options":[{"id":"a","votes":1}]}`, "results", 1532},
		{"other field order", `{"total":7,"type":"results"}`, "results", 7},
		{"hidden", `{"type":"hidden"}`, "hidden", 0},
		{"vote result", `{"type":"vote_result","ref":"1","status":202}`, "vote_result", 0},
		{"not JSON", `{"type":"results",`, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if typ, total := liveMessage([]byte(tt.data)); typ != tt.typ || total != tt.total {
				t.Errorf("liveMessage = %q, %d; want %q, %d", typ, total, tt.typ, tt.total)
			}
		})
	}
}
