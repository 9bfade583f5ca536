package web

import (
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
// endpoints a widget on another site calls: allowed for the poll's
// allowed_origins, or any origin when it lists none.
func (s *server) cors(c *gin.Context) {
	origin := c.GetHeader("Origin")
	if origin == "" {
		return
	}
	p, ok := s.Catalog.Poll(c.Param("id"))
	if !ok {
		if c.Request.Method == "OPTIONS" {
			c.AbortWithStatus(204)
		}
		return // the handler answers 404
	}
	if !p.OriginAllowed(origin) {
		s.fail(c, poll.Errorf(poll.ErrOriginNotAllowed, "origin %q may not use this poll", origin))
		return
	}
	h := c.Writer.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Add("Vary", "Origin")
	if c.Request.Method == "OPTIONS" {
		h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Content-Type, Idempotency-Key")
		h.Set("Access-Control-Max-Age", "600")
		c.AbortWithStatus(204)
	}
}
