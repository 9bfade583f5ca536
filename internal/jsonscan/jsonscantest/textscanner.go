package jsonscantest

import (
	"bytes"
	"io"

	"github.com/go-json-experiment/json/jsontext"
)

// TextScanner has the methods of jsonscan.Scanner the vote decoders use,
// written on a jsontext.Decoder: the decoders' fast path as it would be
// with jsontext as the tokenizer, for the benchmarks that compare the two.
// Like jsonscan.Scanner, it only says "handled" or "not handled".
type TextScanner struct {
	dec jsontext.Decoder
	rd  bytes.Buffer
	buf []byte
}

// Reset starts reading data from its beginning.
func (s *TextScanner) Reset(data []byte) {
	s.rd = *bytes.NewBuffer(data)
	s.dec.Reset(&s.rd, jsontext.AllowDuplicateNames(true))
}

// Object reads an object, handing each member's raw key to member, which
// must read the value. A key with an escape is not handled.
func (s *TextScanner) Object(member func(key []byte) bool) bool {
	if tok, err := s.dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return false
	}
	for s.dec.PeekKind() == '"' {
		name, err := s.dec.ReadValue()
		if err != nil || bytes.IndexByte(name, '\\') >= 0 {
			return false
		}
		if !member(name[1 : len(name)-1]) {
			return false
		}
	}
	tok, err := s.dec.ReadToken()
	return err == nil && tok.Kind() == '}'
}

// Array reads an array, calling elem for each element.
func (s *TextScanner) Array(elem func() bool) bool {
	if tok, err := s.dec.ReadToken(); err != nil || tok.Kind() != '[' {
		return false
	}
	for k := s.dec.PeekKind(); k != ']'; k = s.dec.PeekKind() {
		if k == 0 || !elem() {
			return false
		}
	}
	tok, err := s.dec.ReadToken()
	return err == nil && tok.Kind() == ']'
}

// End reports whether the document ends after the value read.
func (s *TextScanner) End() bool {
	_, err := s.dec.ReadToken()
	return err == io.EOF
}

// Null consumes null if it comes next.
func (s *TextScanner) Null() bool {
	if s.dec.PeekKind() != 'n' {
		return false
	}
	_, err := s.dec.ReadToken()
	return err == nil
}

// String reads a string; the bytes are valid until the next call.
func (s *TextScanner) String() ([]byte, bool) {
	if s.dec.PeekKind() != '"' {
		return nil, false
	}
	v, err := s.dec.ReadValue()
	if err != nil {
		return nil, false
	}
	if bytes.IndexByte(v, '\\') < 0 {
		return v[1 : len(v)-1], true
	}
	s.buf, err = jsontext.AppendUnquote(s.buf[:0], v)
	return s.buf, err == nil
}

// StringInto reads a string or null into *dst as jsonscan.Scanner does.
func (s *TextScanner) StringInto(dst *string, same string) bool {
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

// Strings reads an array of strings or null as the vote decoders'
// scanOptions does: appended to dst, element i equal to same[i] stored as
// same[i].
func (s *TextScanner) Strings(same, dst []string) ([]string, bool) {
	if s.Null() {
		return nil, true
	}
	if dst == nil {
		dst = make([]string, 0, 1)
	}
	i := 0
	ok := s.Array(func() bool {
		b, ok := s.String()
		if !ok {
			return false
		}
		if i < len(same) && string(b) == same[i] {
			dst = append(dst, same[i])
		} else {
			dst = append(dst, string(b))
		}
		i++
		return true
	})
	if !ok {
		return nil, false
	}
	return dst, true
}
