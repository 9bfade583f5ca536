package web

import (
	"errors"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/pollcast/pollcast/poll"
)

// DefaultBodyReadTimeout is Config.BodyReadTimeout's zero value.
const DefaultBodyReadTimeout = 10 * time.Second

// bodyDeadline bounds the reading of a request's body: a client trickling a
// body is cut off after Config.BodyReadTimeout, rather than holding a
// connection and a handler for as long as it likes. http.Server's
// ReadTimeout cannot do this, since it would cut live streams too: the
// deadline is set per request, only on requests with a body, and cleared as
// soon as the body has been read (so that the server's background read of
// the connection does not cancel a handler still working) or, by the live
// endpoints, before they serve.
func (s *server) bodyDeadline(c *gin.Context) {
	if c.Request.Body == nil || c.Request.Body == http.NoBody {
		return
	}
	rc := http.NewResponseController(c.Writer)
	if err := rc.SetReadDeadline(time.Now().Add(s.cfg.BodyReadTimeout)); err != nil {
		return // a writer without deadlines (not net/http's server): nothing to bound
	}
	c.Request.Body = &deadlineBody{ReadCloser: c.Request.Body, rc: rc, timeout: s.cfg.BodyReadTimeout}
}

// deadlineBody is a request body read under a read deadline: it clears the
// deadline at the body's end and reports a passed deadline as
// poll.ErrRequestTimeout.
type deadlineBody struct {
	io.ReadCloser
	rc      *http.ResponseController
	timeout time.Duration
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == io.EOF:
		_ = b.rc.SetReadDeadline(time.Time{})
	case isTimeout(err):
		err = poll.Errorf(poll.ErrRequestTimeout, "the request body did not arrive within %s", b.timeout)
	}
	return n, err
}

func isTimeout(err error) bool {
	var ne net.Error
	return err != nil && errors.As(err, &ne) && ne.Timeout()
}

// clearBodyDeadline lifts the body deadline of a request that is not going
// to read its body (a live stream, which lasts as long as it likes).
func clearBodyDeadline(c *gin.Context) {
	if _, ok := c.Request.Body.(*deadlineBody); ok {
		_ = http.NewResponseController(c.Writer).SetReadDeadline(time.Time{})
	}
}
