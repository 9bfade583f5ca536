package jsonscantest

// DocFromBytes turns fuzz input into a JSON document made mostly of the
// shapes the vote decoders read — the documented keys, their case and
// escape variants, strings with escapes and odd UTF-8, arrays, null — with
// now and then a number, whitespace or a stray token, so that the fuzzer
// spends much of its time on documents encoding/json accepts.
func DocFromBytes(data []byte) []byte {
	g := docGen{data: data}
	g.object(0)
	if g.next()%8 == 0 {
		g.out = append(g.out, docNoise[int(g.next())%len(docNoise)]...)
	}
	return g.out
}

var (
	docKeys = []string{"votes", "poll_id", "options", "voter", "idempotency_key", "referrer", "ip",
		"type", "ref", "Voter", "OPTIONS", "Votes", `vot\u0065r`, "unknown", "idempotency_\u212aey", "opt\u017fions"}
	docStrings = []string{"a", "", "b", "k7Hq2mPz9c", "bench-5f0c9d2e-1", "vote", `\u00e9`, `\ud83d\ude00`, `\ud83d`,
		`\ude00\ud83d`, "\xff", "caf\xc3\xa9", "\xed\xa0\x80", `a\"b`, `\u0026`, `\/\b\f\n\r\t\\`, "\t", `\x`, "192.0.2.1"}
	docNoise = []string{"1", "-0.5e7", "1e999", "true", "false", ",", "]", "}", "{", "nul", "\ufeff", " ", "\n", `"`, "x"}
)

type docGen struct {
	data []byte
	out  []byte
}

func (g *docGen) next() byte {
	if len(g.data) == 0 {
		return 0
	}
	c := g.data[0]
	g.data = g.data[1:]
	return c
}

func (g *docGen) space() {
	if c := g.next(); c&0xc0 == 0xc0 {
		g.out = append(g.out, " \t\n\r"[c&3])
	}
}

// value writes a value, usually of the type key's value has.
func (g *docGen) value(depth int, key string) {
	g.space()
	c := g.next()
	if c%4 != 0 && depth < 6 { // the usual type
		switch key {
		case "votes":
			g.array(depth, "vote")
			return
		case "vote":
			g.object(depth)
			return
		case "options":
			g.array(depth, "")
			return
		}
		c = 0 // a string
	}
	switch c / 4 % 8 {
	case 0, 1, 2:
		g.out = append(append(append(g.out, '"'), docStrings[int(g.next())%len(docStrings)]...), '"')
	case 3:
		g.out = append(g.out, "null"...)
	case 4:
		if depth < 6 {
			g.array(depth, "")
			return
		}
		g.out = append(g.out, "[]"...)
	case 5:
		if depth < 6 {
			g.object(depth)
			return
		}
		g.out = append(g.out, "{}"...)
	default:
		g.out = append(g.out, docNoise[int(g.next())%len(docNoise)]...)
	}
	g.space()
}

func (g *docGen) array(depth int, elem string) {
	g.out = append(g.out, '[')
	for i := range int(g.next() % 4) {
		if i > 0 {
			g.out = append(g.out, ',')
		}
		g.value(depth+1, elem)
	}
	g.space()
	g.out = append(g.out, ']')
}

func (g *docGen) object(depth int) {
	g.out = append(g.out, '{')
	for i := range int(g.next() % 6) {
		if i > 0 {
			g.out = append(g.out, ',')
		}
		g.space()
		key := docKeys[int(g.next())%len(docKeys)]
		g.out = append(append(append(g.out, '"'), key...), `":`...)
		g.value(depth+1, key)
	}
	g.space()
	g.out = append(g.out, '}')
}
