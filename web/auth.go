package web

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/pollcast/pollcast/poll"
)

const keyCtx = "pollcast.key"

// bearer returns the API key the request presents, if any: ok is false when
// the Authorization header is there but names no key.
func (s *server) bearer(c *gin.Context) (*poll.APIKey, bool) {
	h := c.GetHeader("Authorization")
	if h == "" {
		return nil, true
	}
	scheme, secret, found := strings.Cut(h, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(secret) == "" {
		return nil, false
	}
	k, ok := s.Catalog.KeyByHash(poll.HashKey(strings.TrimSpace(secret)))
	return k, ok
}

// auth requires a valid API key.
func (s *server) auth(c *gin.Context) {
	k, ok := s.bearer(c)
	if !ok || k == nil {
		c.Header("WWW-Authenticate", `Bearer realm="pollcast"`)
		s.fail(c, poll.Errorf(poll.ErrUnauthorized, "send Authorization: Bearer <api key>"))
		return
	}
	c.Set(keyCtx, k)
}

// optionalAuth accepts requests without a key, but not with a wrong one.
func (s *server) optionalAuth(c *gin.Context) {
	k, ok := s.bearer(c)
	if !ok {
		c.Header("WWW-Authenticate", `Bearer realm="pollcast"`)
		s.fail(c, poll.Errorf(poll.ErrUnauthorized, "unknown API key"))
		return
	}
	if k != nil {
		c.Set(keyCtx, k)
	}
}

// admin requires the admin role.
func (s *server) admin(c *gin.Context) {
	if k := keyOf(c); k == nil || k.Role != poll.RoleAdmin {
		s.fail(c, poll.Errorf(poll.ErrForbidden, "this needs an admin key"))
	}
}

func keyOf(c *gin.Context) *poll.APIKey {
	v, ok := c.Get(keyCtx)
	if !ok {
		return nil
	}
	return v.(*poll.APIKey)
}

// owns reports whether key may manage p.
func owns(k *poll.APIKey, p *poll.Poll) bool {
	return k != nil && (k.Role == poll.RoleAdmin || k.ID == p.Owner)
}

// cors answers preflights and sets CORS headers for the public poll
// endpoints a widget on another site calls. Every answer, errors included,
// is readable by the calling page, so a widget can say why it cannot show a
// poll; whether the page may use the poll is the poll's allowed_origins (any
// origin when it lists none), checked here for reads and by ingest for votes.
func (s *server) cors(c *gin.Context) {
	origin := c.GetHeader("Origin")
	if origin == "" {
		return
	}
	h := c.Writer.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Expose-Headers", "Retry-After") // how long a rate-limited widget waits
	h.Add("Vary", "Origin")
	if p, ok := s.Catalog.Fetch(c.Request.Context(), c.Param("id")); ok && !s.checkOrigin(c, p) {
		return
	}
	// An unknown poll is answered 404 by the handler, or allowed in a
	// preflight so that the request itself gets that 404.
	if c.Request.Method == http.MethodOptions {
		h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Content-Type, Idempotency-Key")
		h.Set("Access-Control-Max-Age", "600")
		c.AbortWithStatus(http.StatusNoContent)
	}
}

// checkOrigin answers 403 when the calling page may not use p.
func (s *server) checkOrigin(c *gin.Context, p *poll.Poll) bool {
	if origin := s.foreignOrigin(c.Request); !p.OriginAllowed(origin) {
		s.fail(c, poll.Errorf(poll.ErrOriginNotAllowed, "origin %q may not use this poll", origin))
		return false
	}
	return true
}

// foreignOrigin is the request's Origin header, or "" when the page is one
// of our own (the hosted poll page, the dashboard): allowed_origins limits
// the other sites a poll is embedded on, never pollcast's own pages.
func (s *server) foreignOrigin(r *http.Request) string {
	origin := r.Header.Get("Origin")
	if strings.EqualFold(origin, s.selfURL(r)) {
		return ""
	}
	return origin
}
