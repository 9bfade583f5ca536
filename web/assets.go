package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"net/netip"
	"path"
	"strconv"
	"strings"
	"sync"

	"github.com/gin-gonic/gin"
	qrcode "github.com/skip2/go-qrcode"
)

// The web pages: hand-written JavaScript and CSS embedded in the binary, no
// build step (STYLE.md habit 11). Every file of static/ except the page
// templates (*.html) is served at a content-hashed URL with a strong ETag
// and a year of caching; /embed.js, the URL that host pages put in their
// script tag, stays put and is cached for five minutes only.

//go:embed static
var staticFS embed.FS

const (
	cacheHashed = "public, max-age=31536000, immutable"
	cacheStable = "public, max-age=300"
	// Our own pages run only our own scripts and talk only to us.
	cspDashboard = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	cspPollPage = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"connect-src 'self'; base-uri 'none'; form-action 'none'"
)

// asset is one embedded file.
type asset struct {
	name   string // path under static/: "dashboard.js"
	url    string // content-hashed URL: "/static/dashboard.1f2e3d4c5b6a.js"
	etag   string // quoted content hash
	ctype  string
	data   []byte
	gz     []byte // data gzipped, or nil when that does not make it smaller
	gzEtag string
}

// assets are the embedded files and the page templates, read once.
type assets struct {
	byName map[string]*asset
	byFile map[string]*asset // by the last element of the hashed URL
	pages  *template.Template
}

var loadAssets = sync.OnceValue(func() *assets {
	a, err := readAssets(staticFS)
	if err != nil {
		panic("web: embedded assets: " + err.Error()) // the files are compiled in: a bug, caught by any test
	}
	return a
})

func readAssets(fsys fs.FS) (*assets, error) {
	a := &assets{byName: map[string]*asset{}, byFile: map[string]*asset{}}
	err := fs.WalkDir(fsys, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path.Ext(p) == ".html" {
			return err
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		hash := hex.EncodeToString(sum[:6])
		name := strings.TrimPrefix(p, "static/")
		ext := path.Ext(name)
		file := strings.TrimSuffix(name, ext) + "." + hash + ext
		ct := mime.TypeByExtension(ext)
		if ct == "" {
			ct = "application/octet-stream"
		}
		as := &asset{name: name, url: "/static/" + file, etag: `"` + hash + `"`, ctype: ct, data: data}
		if gz := gzipped(data); len(gz) < len(data)*9/10 {
			as.gz, as.gzEtag = gz, `"`+hash+`-gz"`
		}
		a.byName[name] = as
		a.byFile[file] = as
		return nil
	})
	if err != nil {
		return nil, err
	}
	funcs := template.FuncMap{"asset": func(name string) (string, error) {
		as, ok := a.byName[name]
		if !ok {
			return "", fmt.Errorf("no asset %q", name)
		}
		return as.url, nil
	}}
	a.pages, err = template.New("").Funcs(funcs).ParseFS(fsys, "static/*.html")
	return a, err
}

func gzipped(data []byte) []byte {
	var b bytes.Buffer
	w, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	_, _ = w.Write(data)
	_ = w.Close()
	return b.Bytes()
}

// registerAssets serves the widget, the hosted poll page and the dashboard.
func (s *server) registerAssets(r *gin.Engine) {
	a := loadAssets()
	for _, m := range []string{http.MethodGet, http.MethodHead} {
		r.Handle(m, "/embed.js", func(c *gin.Context) {
			c.Header("Access-Control-Allow-Origin", "*")             // lets host pages use Subresource Integrity
			c.Header("Cross-Origin-Resource-Policy", "cross-origin") // and embed it under COEP
			a.byName["embed.js"].serve(c, cacheStable)
		})
		r.Handle(m, "/static/:file", a.serveHashed)
		r.Handle(m, "/p/:id", s.pollPage)
		r.Handle(m, "/dashboard", s.dashboard)
	}
	r.GET("/", func(c *gin.Context) { c.Redirect(http.StatusFound, "/dashboard") })
}

func (a *assets) serveHashed(c *gin.Context) {
	file := c.Param("file")
	if as, ok := a.byFile[file]; ok {
		as.serve(c, cacheHashed)
		return
	}
	// A page of an older or newer build asks for another version: serve
	// this one, but do not let it be cached under that name.
	name, ext, _ := strings.Cut(file, ".")
	if i := strings.LastIndexByte(ext, '.'); i >= 0 {
		if as, ok := a.byName[name+ext[i:]]; ok {
			as.serve(c, "no-cache")
			return
		}
	}
	c.Header("Cache-Control", "no-store")
	c.String(http.StatusNotFound, "not found\n")
}

// serve answers with the asset, gzipped when the client takes it, or 304
// when the client's copy is current.
func (as *asset) serve(c *gin.Context, cacheControl string) {
	h := c.Writer.Header()
	body, etag := as.data, as.etag
	if as.gz != nil {
		h.Add("Vary", "Accept-Encoding")
		if acceptsGzip(c.GetHeader("Accept-Encoding")) {
			body, etag = as.gz, as.gzEtag
			h.Set("Content-Encoding", "gzip")
		}
	}
	h.Set("Cache-Control", cacheControl)
	h.Set("ETag", etag)
	h.Set("X-Content-Type-Options", "nosniff")
	if etagMatch(c.GetHeader("If-None-Match"), etag) {
		h.Del("Content-Encoding")
		c.Status(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", as.ctype)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	c.Status(http.StatusOK)
	if c.Request.Method != http.MethodHead {
		_, _ = c.Writer.Write(body)
	}
}

func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			q := strings.ReplaceAll(params, " ", "")
			return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
		}
	}
	return false
}

// etagMatch is the weak comparison If-None-Match asks for.
func etagMatch(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}

// page renders one of the HTML templates.
func (s *server) page(c *gin.Context, status int, name, csp string, data any) {
	var b bytes.Buffer
	if err := loadAssets().pages.ExecuteTemplate(&b, name, data); err != nil {
		s.fail(c, fmt.Errorf("web: render %s: %w", name, err))
		return
	}
	h := c.Writer.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "strict-origin-when-cross-origin")
	c.Status(status)
	if c.Request.Method != http.MethodHead {
		_, _ = c.Writer.Write(b.Bytes())
	}
}

func (s *server) dashboard(c *gin.Context) {
	s.page(c, http.StatusOK, "dashboard.html", cspDashboard, nil)
}

// pollPageData fills page.html. Question is text: the template escapes it.
type pollPageData struct {
	ID, Question, URL string
	QR                template.HTML // an SVG we drew from the URL: only numbers in it
	Found             bool
}

// pollPage is the hosted page of a poll: the widget, sharing tags and a QR
// code of the page's own URL, for polls shown on a screen at live events.
func (s *server) pollPage(c *gin.Context) {
	p, ok := s.Catalog.Poll(c.Param("id"))
	if !ok {
		s.page(c, http.StatusNotFound, "page.html", cspPollPage, pollPageData{})
		return
	}
	d := pollPageData{ID: p.ID, Question: p.Question, URL: s.selfURL(c.Request) + "/p/" + p.ID, Found: true}
	if qr, err := qrSVG(d.URL); err == nil {
		d.QR = qr
	}
	s.page(c, http.StatusOK, "page.html", cspPollPage, d)
}

// selfURL is Config.PublicURL, else the scheme and host the client used to
// reach us: https when TLS ends here or at a trusted proxy that says so.
func (s *server) selfURL(r *http.Request) string {
	if s.cfg.PublicURL != "" {
		return s.cfg.PublicURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	} else if s.fromTrustedProxy(r) && strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// fromTrustedProxy reports whether the TCP peer is a trusted proxy.
func (s *server) fromTrustedProxy(r *http.Request) bool {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	return err == nil && s.trusted(ap.Addr().Unmap())
}

// qrSVG draws the QR code of text as an SVG: one path of dark modules on a
// white square with the standard quiet zone, black on white in any theme.
func qrSVG(text string) (template.HTML, error) {
	q, err := qrcode.New(text, qrcode.Medium)
	if err != nil {
		return "", err
	}
	bm := q.Bitmap()
	n := len(bm)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" shape-rendering="crispEdges" role="img" aria-label="QR code of this page's address">`, n, n)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#fff"/><path fill="#000" d="`, n, n)
	for y, row := range bm {
		for x := 0; x < len(row); {
			if !row[x] {
				x++
				continue
			}
			start := x
			for x < len(row) && row[x] {
				x++
			}
			fmt.Fprintf(&b, "M%d %dh%dv1h-%dz", start, y, x-start, x-start)
		}
	}
	b.WriteString(`"/></svg>`)
	return template.HTML(b.String()), nil
}
