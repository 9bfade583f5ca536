package loadgen

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

const (
	serverResults = `{"type":"results","poll_id":"afAzjVgo4Wtf","total":1532,"voters":1532,"options":[{"id":"a","votes":1000},` +
		`{"id":"b","votes":532}],"version":1532,"status":"open","updated_at":"2026-12-03T19:21:07.232516452Z"}`
	serverAnswer = `{"type":"vote_result","ref":"17","status":202,"vote_id":"jFNjDsqmaILlE-q-QJon4g"}`
	serverPoll   = `{"type":"poll","id":"p","question":"Q?","kind":"single","max_choices":1,"options":[{"id":"a","label":"A"}],` +
		`"opens_at":null,"closes_at":"2026-12-31T18:00:00Z","deleted":true}`
)

func TestDecodeAnswer(t *testing.T) {
	tests := []struct {
		name, data string
		want       wsAnswer
		wantErr    error
	}{
		{name: "as the server writes it", data: serverAnswer,
			want: wsAnswer{typ: "vote_result", ref: 17, refOK: true, hasRef: true, status: 202, statusOK: true}},
		{name: "a failure", data: `{"type":"vote_result","ref":"3","status":429,"code":"rate_limited","detail":"too many \"votes\""}`,
			want: wsAnswer{typ: "vote_result", ref: 3, refOK: true, hasRef: true, status: 429, statusOK: true, code: "rate_limited"}},
		{name: "another order, white space", data: " { \"status\" : 409 ,\n\"code\":\"already_voted\", \"ref\":\"8\", \"type\" :\"vote_result\" } ",
			want: wsAnswer{typ: "vote_result", ref: 8, refOK: true, hasRef: true, status: 409, statusOK: true, code: "already_voted"}},
		{name: "escapes in values", data: `{"type":"vote\u005fresult","ref":"1\u0032","status":503,"code":"over\u006coaded"}`,
			want: wsAnswer{typ: "vote_result", ref: 12, refOK: true, hasRef: true, status: 503, statusOK: true, code: "overloaded"}},
		{name: "an escaped key", data: `{"t\u0079pe":"vote_result","ref":"12","status":503,"\u0063ode":"overloaded","x":[1,{"y":2}]}`,
			want: wsAnswer{typ: "vote_result", ref: 12, refOK: true, hasRef: true, status: 503, statusOK: true, code: "overloaded"}},
		{name: "results", data: serverResults, want: wsAnswer{typ: "results"}},
		{name: "poll", data: serverPoll, want: wsAnswer{typ: "poll"}},
		{name: "nested values passed over", data: `{"x":{"type":"no","a":[1,{"b":"}]"}],"c":null},"type":"poll","y":[true,false,-1.5e3]}`,
			want: wsAnswer{typ: "poll"}},
		{name: "the last of a duplicate wins", data: `{"type":"results","type":"vote_result","ref":"1","ref":"2","status":"x","status":200}`,
			want: wsAnswer{typ: "vote_result", ref: 2, refOK: true, hasRef: true, status: 200, statusOK: true}},
		{name: "the last of a duplicate wins, not a string", data: `{"type":"vote_result","ref":"1","ref":1,"code":"a","code":null,"status":202,"status":"202"}`,
			want: wsAnswer{typ: "vote_result"}},
		{name: "a ref not ours", data: `{"type":"vote_result","ref":"007","status":202}`,
			want: wsAnswer{typ: "vote_result", hasRef: true, status: 202, statusOK: true}},
		{name: "a numeric ref", data: `{"type":"vote_result","ref":7,"status":202}`,
			want: wsAnswer{typ: "vote_result", status: 202, statusOK: true}},
		{name: "no status", data: `{"type":"vote_result","ref":"7"}`,
			want: wsAnswer{typ: "vote_result", ref: 7, refOK: true, hasRef: true}},
		{name: "a status not an integer", data: `{"type":"vote_result","ref":"7","status":202.5}`,
			want: wsAnswer{typ: "vote_result", ref: 7, refOK: true, hasRef: true}},
		{name: "a status out of range", data: `{"type":"vote_result","ref":"7","status":2020}`,
			want: wsAnswer{typ: "vote_result", ref: 7, refOK: true, hasRef: true}},
		{name: "empty object", data: `{}`},
		{name: "cut", data: `{"type":"vote_result","ref":"7","sta`, wantErr: errBadMessage},
		{name: "not an object", data: `["type","vote_result"]`, wantErr: errBadMessage},
		{name: "null", data: `null`, wantErr: errBadMessage},
		{name: "not JSON", data: `vote_result 7 202`, wantErr: errBadMessage},
		{name: "empty", data: ``, wantErr: errBadMessage},
		{name: "trailing bytes", data: `{"type":"vote_result"} x`, wantErr: errBadMessage},
		{name: "a missing comma", data: `{"type":"vote_result" "ref":"1"}`, wantErr: errBadMessage},
		{name: "a missing value", data: `{"type":"vote_result","ref":}`, wantErr: errBadMessage},
		{name: "an unclosed string", data: `{"type":"vote_result","code":"oops}`, wantErr: errBadMessage},
		{name: "a bad escape", data: `{"type":"vote_result","code":"\q"}`, wantErr: errBadMessage},
		{name: "an unbalanced value", data: `{"type":"results","options":[{"id":"a"]}`, wantErr: errBadMessage},
		{name: "a malformed number passed over", data: `{"type":"vote_result","x":[01]}`, wantErr: errBadMessage},
		{name: "a malformed status", data: `{"type":"vote_result","status":-}`, wantErr: errBadMessage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeAnswer([]byte(tt.data))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("decodeAnswer = %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseRefStatus(t *testing.T) {
	for _, tc := range []struct {
		v        string
		ref      int64
		refOK    bool
		status   int
		statusOK bool
	}{
		{"0", 0, false, 0, true},
		{"1", 1, true, 1, true},
		{"999", 999, true, 999, true},
		{"1000", 1000, true, 0, false},
		{"999999999999999999", 999999999999999999, true, 0, false},
		{"1000000000000000000", 0, false, 0, false},
		{"007", 0, false, 0, false},
		{"-1", 0, false, 0, false},
		{"2e2", 0, false, 0, false},
		{"1.0", 0, false, 0, false},
		{"", 0, false, 0, false},
	} {
		ref, refOK := parseRef([]byte(tc.v))
		status, statusOK := parseStatus([]byte(tc.v))
		if ref != tc.ref && refOK || refOK != tc.refOK || status != tc.status && statusOK || statusOK != tc.statusOK {
			t.Errorf("%q: ref %d %v, status %d %v; want ref %d %v, status %d %v",
				tc.v, ref, refOK, status, statusOK, tc.ref, tc.refOK, tc.status, tc.statusOK)
		}
	}
}

func TestLiveMessage(t *testing.T) {
	tests := []struct {
		name, data string
		typ        string
		total      int64
	}{
		{"as the server writes it", serverResults, "results", 1532},
		{"other field order", `{"total":7,"type":"results"}`, "results", 7},
		{"hidden", `{"type":"hidden"}`, "hidden", 0},
		{"vote result", serverAnswer, "vote_result", 0},
		{"poll", serverPoll, "poll", 0},
		{"a total inside an option", `{"type":"results","options":[{"id":"a","total":5}],"total":7}`, "results", 7},
		{"keys in another case", `{"TYPE":"results","Total":3}`, "results", 3},
		{"an escaped key", `{"type":"results","t\u006ftal":4}`, "results", 4},
		{"null leaves what was", `{"type":"results","total":3,"total":null,"type":null}`, "results", 3},
		{"the last of a duplicate wins", `{"type":"poll","total":3,"type":"results","total":4}`, "results", 4},
		{"a fractional total", `{"type":"results","total":1.5}`, "", 0},
		{"a total over int64", `{"type":"results","total":9223372036854775808}`, "", 0},
		{"a total as a string", `{"type":"results","total":"3"}`, "", 0},
		{"a type not a string", `{"type":1,"total":2}`, "", 0},
		{"not JSON", `{"type":"results",`, "", 0},
		{"a malformed value elsewhere", `{"type":"results","total":2,"x":tru}`, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if typ, total := liveMessage([]byte(tt.data)); typ != tt.typ || total != tt.total {
				t.Errorf("liveMessage = %q, %d; want %q, %d", typ, total, tt.typ, tt.total)
			}
		})
	}
}

// TestLiveMessagesAllocate: the messages that come most are read without
// allocating.
func TestLiveMessagesAllocate(t *testing.T) {
	answer, results := []byte(serverAnswer), []byte(serverResults)
	if n := testing.AllocsPerRun(100, func() { _, _ = decodeAnswer(answer) }); n != 0 {
		t.Errorf("decodeAnswer: %v allocations", n)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = decodeAnswer(results) }); n != 0 {
		t.Errorf("decodeAnswer of results: %v allocations", n)
	}
	if n := testing.AllocsPerRun(100, func() { liveMessage(results) }); n != 0 {
		t.Errorf("liveMessage: %v allocations", n)
	}
}

// answerByJSON is decodeAnswer written with encoding/json alone: a map,
// with numbers kept as they are written.
func answerByJSON(data []byte) (wsAnswer, error) {
	if !json.Valid(data) {
		return wsAnswer{}, errBadMessage
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var m map[string]any
	if d.Decode(&m) != nil || m == nil {
		return wsAnswer{}, errBadMessage
	}
	var a wsAnswer
	a.typ, _ = m["type"].(string)
	a.code, _ = m["code"].(string)
	if ref, ok := m["ref"].(string); ok {
		a.hasRef = true
		a.ref, a.refOK = parseRef([]byte(ref))
	}
	if n, ok := m["status"].(json.Number); ok {
		a.status, a.statusOK = parseStatus([]byte(n))
	}
	return a, nil
}

// FuzzLiveMessages: decodeAnswer and liveMessage read what encoding/json
// reads, from any input.
func FuzzLiveMessages(f *testing.F) {
	for _, s := range []string{
		serverAnswer, serverResults, serverPoll,
		`{"type":"vote_result","ref":"3","status":429,"code":"rate_limited","detail":"x"}`,
		`{"t\u0079pe":"vote\u005fresult","ref":"1\u0032","status":503}`,
		`{"type":null,"ref":1,"status":"202","code":[],"total":null}`,
		`{"TYPE":"results","Total":3,"tot\u0061l":4}`, "{\"type\":\"caf\xc3\xa9\xff\",\"total\":-0}",
		`{"status":2e2,"total":1e2}`, `{}`, `[]`, `"x"`, `null`, `{"a":{"b":[1,2,{"c":"]"}]}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := decodeAnswer(data)
		want, wantErr := answerByJSON(data)
		if !errors.Is(err, wantErr) || got != want {
			t.Errorf("%q: decodeAnswer = %+v, %v\nencoding/json %+v, %v", data, got, err, want, wantErr)
		}
		var m struct {
			Type  string `json:"type"`
			Total int64  `json:"total"`
		}
		if json.Unmarshal(data, &m) != nil {
			m.Type, m.Total = "", 0
		}
		if typ, total := liveMessage(data); typ != m.Type || total != m.Total {
			t.Errorf("%q: liveMessage = %q, %d; encoding/json %q, %d", data, typ, total, m.Type, m.Total)
		}
	})
}

func BenchmarkDecodeAnswer(b *testing.B) {
	data := []byte(serverAnswer)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeAnswer(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLiveMessage(b *testing.B) {
	data := []byte(serverResults)
	b.ReportAllocs()
	for b.Loop() {
		if typ, _ := liveMessage(data); typ != "results" {
			b.Fatal(typ)
		}
	}
}
