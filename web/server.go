package web

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pollcast/pollcast/analytics"
	"github.com/pollcast/pollcast/ingest"
	"github.com/pollcast/pollcast/poll"
	"github.com/pollcast/pollcast/realtime"
	"github.com/pollcast/pollcast/tally"
)

// Check is one readiness check: /readyz answers 200 only when all pass.
type Check struct {
	Name  string
	Check func(ctx context.Context) error
}

// Deps are the services the handlers use. All are required.
type Deps struct {
	Catalog   *poll.Catalog
	Ingest    *ingest.Service
	Store     tally.Store
	Hub       *realtime.Hub
	Analytics analytics.Store
	Gatherer  prometheus.Gatherer
	Ready     []Check
}

// Config configures New.
type Config struct {
	// TrustedProxies are the peers whose X-Forwarded-For is believed. Zero
	// value means none: the client is the TCP peer.
	TrustedProxies []netip.Prefix
	// Logger receives request errors. Zero value means slog.Default().
	Logger *slog.Logger
	// PublicURL is the scheme and host users reach this server at
	// ("https://polls.example.com"): the hosted pages link to it, and only a
	// page from it counts as pollcast's own for allowed_origins. Zero value
	// means what each request's Host header says.
	PublicURL string
	// BodyReadTimeout bounds the reading of a request body, from the end of
	// its headers: a slower client gets 408 request_timeout and the
	// connection is closed. Zero value means DefaultBodyReadTimeout.
	BodyReadTimeout time.Duration
	// PurgeTimeout bounds a purge (DELETE /v1/polls/{id}?purge=true), most
	// of it the wait for the analytics sink to catch up with the log; past
	// it the purge answers 503 and may be asked again. Zero value means 30s.
	PurgeTimeout time.Duration
}

type server struct {
	Deps
	cfg Config
	log *slog.Logger
}

// New returns the HTTP handler of API.md.
func New(d Deps, cfg Config) (http.Handler, error) {
	if d.Catalog == nil || d.Ingest == nil || d.Store == nil || d.Hub == nil || d.Analytics == nil || d.Gatherer == nil {
		return nil, errors.New("web: missing dependency")
	}
	cfg.BodyReadTimeout = cmp.Or(cfg.BodyReadTimeout, DefaultBodyReadTimeout)
	cfg.PurgeTimeout = cmp.Or(cfg.PurgeTimeout, 30*time.Second)
	s := &server{Deps: d, cfg: cfg, log: cmp.Or(cfg.Logger, slog.Default())}
	r := s.engine()
	r.Use(s.bodyDeadline)

	s.registerOps(r)
	r.GET("/openapi.json", s.openapi)

	v1 := r.Group("/v1")
	v1.POST("/polls", s.auth, s.createPoll)
	v1.GET("/polls", s.auth, s.listPolls)
	v1.GET("/polls/:id", s.optionalAuth, s.cors, s.getPoll)
	v1.PATCH("/polls/:id", s.auth, s.patchPoll)
	v1.DELETE("/polls/:id", s.auth, s.deletePoll)
	v1.POST("/polls/:id/close", s.auth, s.closePoll)
	v1.POST("/polls/:id/open", s.auth, s.openPoll)
	v1.POST("/polls/:id/votes", s.cors, s.vote)
	v1.GET("/polls/:id/results", s.optionalAuth, s.cors, s.results)
	v1.GET("/polls/:id/live", s.optionalAuth, s.live)
	v1.GET("/polls/:id/events", s.optionalAuth, s.cors, s.events)
	for _, path := range []string{"/polls/:id", "/polls/:id/votes", "/polls/:id/results", "/polls/:id/events"} {
		v1.OPTIONS(path, s.cors)
	}
	v1.GET("/polls/:id/analytics/timeline", s.auth, s.timeline)
	v1.GET("/polls/:id/analytics/breakdown", s.auth, s.breakdown)
	v1.GET("/polls/:id/votes.csv", s.auth, s.votesCSV)
	v1.POST("/votes/batch", s.auth, s.voteBatch)
	v1.POST("/keys", s.auth, s.admin, s.createKey)
	v1.GET("/keys", s.auth, s.admin, s.listKeys)
	v1.DELETE("/keys/:id", s.auth, s.admin, s.deleteKey)
	s.registerAssets(r)
	return r, nil
}

// NewOps returns the handler of a process that serves no API (a tally or
// analytics node): healthz, readyz and metrics only.
func NewOps(gatherer prometheus.Gatherer, ready []Check, logger *slog.Logger) http.Handler {
	s := &server{Deps: Deps{Gatherer: gatherer, Ready: ready}, log: cmp.Or(logger, slog.Default())}
	r := s.engine()
	s.registerOps(r)
	return r
}

// engine returns a gin engine answering unknown routes and methods with
// problem documents.
func (s *server) engine() *gin.Engine {
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.RedirectTrailingSlash = false
	r.Use(s.recover)
	r.NoRoute(func(c *gin.Context) { s.fail(c, poll.Errorf(poll.ErrNotFound, "no such endpoint")) })
	r.NoMethod(func(c *gin.Context) {
		c.Header("Content-Type", "application/problem+json")
		c.AbortWithStatus(http.StatusMethodNotAllowed)
		writeJSONBody(c, Problem{Type: "urn:pollcast:problem:method_not_allowed", Title: "Method not allowed",
			Status: http.StatusMethodNotAllowed, Code: poll.CodeMethodNotAllowed})
	})
	return r
}

func (s *server) registerOps(r *gin.Engine) {
	r.GET("/healthz", s.healthz)
	r.GET("/readyz", s.readyz)
	r.GET("/metrics", gin.WrapH(promhttp.HandlerFor(s.Gatherer, promhttp.HandlerOpts{})))
}

// recover turns a panic in a handler into a 500 problem, never a dead process.
func (s *server) recover(c *gin.Context) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("panic in handler", "path", c.Request.URL.Path, "panic", v)
			s.fail(c, errors.New("panic"))
		}
	}()
	c.Next()
}

func (s *server) healthz(c *gin.Context) {
	writeJSON(c, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *server) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	failing := map[string]string{}
	for _, ch := range s.Ready {
		if err := ch.Check(ctx); err != nil {
			failing[ch.Name] = err.Error()
		}
	}
	c.Header("Cache-Control", "no-store")
	if len(failing) > 0 {
		writeJSON(c, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "failing": failing})
		return
	}
	writeJSON(c, http.StatusOK, map[string]string{"status": "ready"})
}

// clientIP returns the client's address: the TCP peer, or, when the peer is
// a trusted proxy, the nearest untrusted address of X-Forwarded-For.
func (s *server) clientIP(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	ip := ap.Addr().Unmap()
	if !s.trusted(ip) {
		return ip
	}
	xff := r.Header.Values("X-Forwarded-For")
	for i := len(xff) - 1; i >= 0; i-- {
		parts := splitComma(xff[i])
		for j := len(parts) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(parts[j])
			if err != nil {
				return ip
			}
			a = a.Unmap()
			if !s.trusted(a) {
				return a
			}
			ip = a
		}
	}
	return ip
}

func (s *server) trusted(ip netip.Addr) bool {
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func splitComma(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}
