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
	body, err := readBody(c, limit)
	if err != nil {
		return err
	}
	return unmarshalBody(body, dst)
}

// readBody reads the request body: at most limit bytes, else
// ErrBodyTooLarge.
func readBody(c *gin.Context, limit int64) ([]byte, error) {
	if c.Request.ContentLength > limit {
		return nil, poll.Errorf(poll.ErrBodyTooLarge, "request body is over %d bytes", limit)
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, poll.Errorf(poll.ErrBodyTooLarge, "request body is over %d bytes", limit)
		}
		return nil, poll.Errorf(poll.ErrBadRequest, "could not read the request body")
	}
	return body, nil
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
