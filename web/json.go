package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/pollcast/pollcast/poll"
)

// Body size limits of API.md.
const (
	maxBody      = 64 << 10
	maxBatchBody = 1 << 20
)

// decodeJSON reads the request body into dst: at most limit bytes, one JSON
// value, no unknown fields.
func decodeJSON(c *gin.Context, limit int64, dst any) error {
	body, err := readBody(c, limit, false)
	if err != nil {
		return err
	}
	return unmarshalBody(body, dst)
}

// readBody reads the request body: at most limit bytes, else
// ErrBodyTooLarge. sized reads it into one buffer of the announced
// Content-Length: only for authenticated callers, since anyone could
// announce a large body and never send it.
func readBody(c *gin.Context, limit int64, sized bool) ([]byte, error) {
	if c.Request.ContentLength > limit {
		return nil, poll.Errorf(poll.ErrBodyTooLarge, "request body is over %d bytes", limit)
	}
	size := int64(0)
	if sized {
		size = c.Request.ContentLength
	}
	body, err := readAll(http.MaxBytesReader(c.Writer, c.Request.Body, limit), size)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, poll.Errorf(poll.ErrBodyTooLarge, "request body is over %d bytes", limit)
		}
		if errors.Is(err, poll.ErrRequestTimeout) {
			// The connection's reads are past their deadline: it cannot
			// carry another request.
			c.Header("Connection", "close")
			return nil, err
		}
		return nil, poll.Errorf(poll.ErrBadRequest, "could not read the request body")
	}
	return body, nil
}

// readAll is io.ReadAll with a first buffer of size bytes, the body's
// announced length (net/http never reads past it), when size > 0: a batch
// is read into one buffer instead of a dozen growing ones.
func readAll(r io.Reader, size int64) ([]byte, error) {
	if size <= 0 {
		return io.ReadAll(r)
	}
	b := make([]byte, 0, size+1) // the read that finds the end needs room
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
}

// unmarshalBody decodes body into dst: one JSON value, no unknown fields,
// else ErrBadRequest.
func unmarshalBody(body []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		if errors.Is(err, io.EOF) {
			return poll.Errorf(poll.ErrBadRequest, "request body is empty; send a JSON object")
		}
		return poll.Errorf(poll.ErrBadRequest, "malformed JSON: %s", jsonErrorText(err))
	}
	if dec.More() {
		return poll.Errorf(poll.ErrBadRequest, "malformed JSON: data after the first value")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return poll.Errorf(poll.ErrBadRequest, "malformed JSON: data after the first value")
	}
	return nil
}

// jsonErrorText describes a decoding error without echoing large inputs.
func jsonErrorText(err error) string {
	var ute *json.UnmarshalTypeError
	if errors.As(err, &ute) {
		return "field " + ute.Field + " must be " + ute.Type.String()
	}
	msg := err.Error()
	if len(msg) > 200 {
		msg = msg[:200]
	}
	return msg
}

// writeJSON answers with status and v as JSON.
func writeJSON(c *gin.Context, status int, v any) {
	c.Header("Content-Type", "application/json; charset=utf-8")
	c.Status(status)
	writeJSONBody(c, v)
}

func writeJSONBody(c *gin.Context, v any) {
	enc := json.NewEncoder(c.Writer)
	enc.SetEscapeHTML(true)
	_ = enc.Encode(v)
}
