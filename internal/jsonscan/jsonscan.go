package jsonscan

import (
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Scanner reads one JSON document from a byte slice. The zero value is
// empty; Reset gives it a document. A Scanner is not safe for concurrent use.
type Scanner struct {
	data []byte
	pos  int
	buf  []byte // unescaped strings
}

// Reset starts reading data from its beginning.
func (s *Scanner) Reset(data []byte) {
	s.data, s.pos = data, 0
}

// plain marks the bytes a string can hold as they are: everything but the
// quote, the backslash, control characters and non-ASCII bytes (which need
// a UTF-8 check).
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func (s *Scanner) skipSpace() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// Consume skips whitespace and consumes c if it comes next; it reports
// whether it did.
func (s *Scanner) Consume(c byte) bool {
	s.skipSpace()
	if s.pos < len(s.data) && s.data[s.pos] == c {
		s.pos++
		return true
	}
	return false
}

// End skips whitespace and reports whether the document ends there.
func (s *Scanner) End() bool {
	s.skipSpace()
	return s.pos == len(s.data)
}

// Null skips whitespace and consumes the literal null if it comes next; it
// reports whether it did. What follows is checked by the next call.
func (s *Scanner) Null() bool {
	s.skipSpace()
	return s.literal("null")
}

// Object reads an object: '{', then for each member its key, handed to
// member, which must read the value and report whether it could; then '}'.
// It reports whether the whole object was read; it stops at the first
// member that was not.
func (s *Scanner) Object(member func(key []byte) bool) bool {
	if !s.Consume('{') {
		return false
	}
	for i := 0; ; i++ {
		key, end, ok := s.Member(i)
		if !ok {
			return false
		}
		if end {
			return true
		}
		if !member(key) {
			return false
		}
	}
}

// Member moves to member i of the object whose '{' was consumed (i counts
// from 0): it consumes the ',' before it, its key and the ':' after the key.
// It returns the raw key, or end == true once the object's '}' is consumed.
func (s *Scanner) Member(i int) (key []byte, end, ok bool) {
	s.skipSpace()
	if s.pos >= len(s.data) {
		return nil, false, false
	}
	switch c := s.data[s.pos]; {
	case c == '}':
		s.pos++
		return nil, true, true
	case i > 0 && c == ',':
		s.pos++
		s.skipSpace()
	case i > 0:
		return nil, false, false
	}
	if s.pos >= len(s.data) || s.data[s.pos] != '"' {
		return nil, false, false
	}
	start := s.pos + 1
	p := start
	// A key with an escape may spell a known key, and one with a control
	// character is invalid: both are not handled. Non-ASCII keys are
	// returned raw: they never equal the ASCII names callers look for.
	for p < len(s.data) && (plain[s.data[p]] || s.data[p] >= utf8.RuneSelf) {
		p++
	}
	if p >= len(s.data) || s.data[p] != '"' {
		return nil, false, false
	}
	key = s.data[start:p]
	s.pos = p + 1
	if !s.Consume(':') {
		return nil, false, false
	}
	return key, false, true
}

// Element moves to element i of the array whose '[' was consumed (i counts
// from 0): it consumes the ',' before it. It reports end == true once the
// array's ']' is consumed.
func (s *Scanner) Element(i int) (end, ok bool) {
	s.skipSpace()
	if s.pos >= len(s.data) {
		return false, false
	}
	switch c := s.data[s.pos]; {
	case c == ']':
		s.pos++
		return true, true
	case i > 0 && c == ',':
		s.pos++
		return false, true
	case i > 0:
		return false, false
	}
	return false, true
}

// String skips whitespace and reads a string. The bytes it returns are its
// value as encoding/json would decode it; they alias the document or the
// Scanner's buffer and are valid until the next call. ok is false when no
// well-formed string comes next.
func (s *Scanner) String() (b []byte, ok bool) {
	s.skipSpace()
	if s.pos >= len(s.data) || s.data[s.pos] != '"' {
		return nil, false
	}
	start := s.pos + 1
	p := start
	for p < len(s.data) && plain[s.data[p]] {
		p++
	}
	if p < len(s.data) && s.data[p] == '"' {
		s.pos = p + 1
		return s.data[start:p], true
	}
	return s.slowString(start, p)
}

// slowString finishes a string that has escapes or non-ASCII bytes from p
// on, the way encoding/json's unquote does: escapes decoded, a surrogate
// pair joined, a lone surrogate escape and each byte of invalid UTF-8
// replaced by U+FFFD.
func (s *Scanner) slowString(start, p int) ([]byte, bool) {
	d := s.data
	b := append(s.buf[:0], d[start:p]...)
	for {
		if p >= len(d) {
			return nil, false
		}
		c := d[p]
		switch {
		case c == '"':
			s.pos = p + 1
			s.buf = b
			return b, true
		case plain[c]:
			b = append(b, c)
			p++
		case c == '\\':
			if p+1 >= len(d) {
				return nil, false
			}
			switch d[p+1] {
			case '"', '\\', '/':
				b = append(b, d[p+1])
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r := hex4(d, p+2)
				if r < 0 {
					return nil, false
				}
				p += 6
				if utf16.IsSurrogate(r) {
					if r2 := u4(d, p); r2 >= 0 {
						if dec := utf16.DecodeRune(r, r2); dec != unicode.ReplacementChar {
							b = utf8.AppendRune(b, dec)
							p += 6
							continue
						}
					}
					r = unicode.ReplacementChar
				}
				b = utf8.AppendRune(b, r)
				continue
			default:
				return nil, false
			}
			p += 2
		case c < ' ':
			return nil, false
		default:
			r, size := utf8.DecodeRune(d[p:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, "\uFFFD"...)
			} else {
				b = append(b, d[p:p+size]...)
			}
			p += size
		}
	}
}

// u4 decodes the escape \uXXXX at d[p:], or returns -1.
func u4(d []byte, p int) rune {
	if p+1 >= len(d) || d[p] != '\\' || d[p+1] != 'u' {
		return -1
	}
	return hex4(d, p+2)
}

// hex4 decodes the four hex digits at d[p:], or returns -1.
func hex4(d []byte, p int) rune {
	if p+4 > len(d) {
		return -1
	}
	var r rune
	for _, c := range d[p : p+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

// StringInto reads a string or null into *dst: null leaves *dst as it is,
// as encoding/json does. A value equal to same is stored as same, without
// a copy.
func (s *Scanner) StringInto(dst *string, same string) bool {
	if s.Null() {
		return true
	}
	b, ok := s.String()
	if !ok {
		return false
	}
	if string(b) == same {
		*dst = same
	} else {
		*dst = string(b)
	}
	return true
}

// Strings reads an array of strings, appending its elements to dst, or
// null, which gives nil, as encoding/json sets a slice to nil for null. An
// empty array gives an empty slice that is not nil. Element i equal to
// same[i] is stored as same[i], without a copy. A null element is not
// handled: encoding/json would leave what the slice's spare capacity held.
func (s *Scanner) Strings(same, dst []string) ([]string, bool) {
	if s.Null() {
		return nil, true
	}
	if !s.Consume('[') {
		return nil, false
	}
	if dst == nil {
		dst = make([]string, 0, 1)
	}
	for i := 0; ; i++ {
		end, ok := s.Element(i)
		if !ok {
			return nil, false
		}
		if end {
			return dst, true
		}
		b, ok := s.String()
		if !ok {
			return nil, false
		}
		if i < len(same) && string(b) == same[i] {
			dst = append(dst, same[i])
		} else {
			dst = append(dst, string(b))
		}
	}
}

// Number skips whitespace and reads a number as JSON writes them, an
// optional minus, an integer without leading zeros, then an optional
// fraction and exponent, and returns its text, which aliases the document.
// ok is false, and nothing but whitespace consumed, when no number comes
// next. What follows is checked by the next call, as with Null.
func (s *Scanner) Number() (b []byte, ok bool) {
	s.skipSpace()
	d, start := s.data, s.pos
	p := start
	if p < len(d) && d[p] == '-' {
		p++
	}
	switch {
	case p < len(d) && d[p] == '0':
		p++
	case p < len(d) && '1' <= d[p] && d[p] <= '9':
		p = digits(d, p)
	default:
		return nil, false
	}
	if p < len(d) && d[p] == '.' {
		if q := digits(d, p+1); q > p+1 {
			p = q
		} else {
			return nil, false
		}
	}
	if p < len(d) && (d[p] == 'e' || d[p] == 'E') {
		q := p + 1
		if q < len(d) && (d[q] == '+' || d[q] == '-') {
			q++
		}
		if r := digits(d, q); r > q {
			p = r
		} else {
			return nil, false
		}
	}
	s.pos = p
	return d[start:p], true
}

// digits returns the end of the run of decimal digits at d[p:].
func digits(d []byte, p int) int {
	for p < len(d) && '0' <= d[p] && d[p] <= '9' {
		p++
	}
	return p
}

// maxDepth is how deep encoding/json lets objects and arrays nest.
const maxDepth = 10000

// Skip skips whitespace and one value of any kind, checking it as
// encoding/json does: it reports false for anything json.Valid rejects
// (a malformed number, a bad escape, a control character in a string, a
// missing comma...) and for values nested deeper than encoding/json takes.
// Keys with escapes are fine here: they are checked, not read. What
// follows the value is checked by the next call, as with Null.
func (s *Scanner) Skip() bool {
	return s.skip(1)
}

// skip skips a value whose objects and arrays would be at depth and below.
func (s *Scanner) skip(depth int) bool {
	s.skipSpace()
	if s.pos >= len(s.data) {
		return false
	}
	switch s.data[s.pos] {
	case '"':
		return s.skipString()
	case '{', '[':
		if depth > maxDepth {
			return false
		}
		object, end := s.data[s.pos] == '{', byte(']')
		if object {
			end = '}'
		}
		s.pos++
		if s.Consume(end) {
			return true
		}
		for {
			if object {
				s.skipSpace()
				if !s.skipString() || !s.Consume(':') {
					return false
				}
			}
			if !s.skip(depth + 1) {
				return false
			}
			if s.Consume(end) {
				return true
			}
			if !s.Consume(',') {
				return false
			}
		}
	case 't':
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.Null()
	}
	_, ok := s.Number()
	return ok
}

// literal consumes lit if it comes next.
func (s *Scanner) literal(lit string) bool {
	if len(s.data)-s.pos >= len(lit) && string(s.data[s.pos:s.pos+len(lit)]) == lit {
		s.pos += len(lit)
		return true
	}
	return false
}

// skipString skips the string at the cursor, checking its escapes and
// that it holds no control character. Like encoding/json, it takes any
// other byte: invalid UTF-8 is mended when a string is read, not here.
func (s *Scanner) skipString() bool {
	d := s.data
	if s.pos >= len(d) || d[s.pos] != '"' {
		return false
	}
	for p := s.pos + 1; p < len(d); {
		switch c := d[p]; {
		case c == '"':
			s.pos = p + 1
			return true
		case c == '\\':
			if p+1 >= len(d) {
				return false
			}
			switch d[p+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p += 2
			case 'u':
				if hex4(d, p+2) < 0 {
					return false
				}
				p += 6
			default:
				return false
			}
		case c < ' ':
			return false
		default:
			p++
		}
	}
	return false
}
