package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/pollcast/pollcast/web"
)

// documentedElsewhere reports whether a route belongs to the web pages
// (widget, hosted page, dashboard and their assets): they are documented
// too, but a change to them must not fail this test.
func documentedElsewhere(path string) bool {
	switch path {
	case "/", "/embed.js", "/p/{id}", "/dashboard":
		return true
	}
	return strings.HasPrefix(path, "/static/") || strings.HasPrefix(path, "/assets/")
}

var ginParam = regexp.MustCompile(`[:*]([A-Za-z0-9_]+)`)

// TestOpenAPIDocumentsEveryRoute: every route of the router as wired is in
// /openapi.json, and every operation of the document is a route.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	a := startApp(t)
	engine, ok := a.srv.Handler.(*gin.Engine)
	if !ok {
		t.Fatalf("the handler is a %T, not a *gin.Engine", a.srv.Handler)
	}
	r := a.do("GET", "/openapi.json", nil)
	if r.Status != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET /openapi.json: %d %s", r.Status, r.Header.Get("Content-Type"))
	}
	if !bytes.Equal(r.Body, web.OpenAPI) {
		t.Fatal("GET /openapi.json is not the embedded document")
	}
	var doc struct {
		OpenAPI string                               `json:"openapi"`
		Paths   map[string]map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(r.Body, &doc); err != nil {
		t.Fatal(err)
	}

	routes := map[string]bool{}
	for _, rt := range engine.Routes() {
		path := ginParam.ReplaceAllString(rt.Path, "{$1}")
		if rt.Method == http.MethodOptions || documentedElsewhere(path) {
			continue
		}
		routes[rt.Method+" "+path] = true
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			if documentedElsewhere(path) {
				continue
			}
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	for rt := range routes {
		if !documented[rt] {
			t.Errorf("route %s is not in web/openapi.json", rt)
		}
	}
	for op := range documented {
		if !routes[op] {
			t.Errorf("web/openapi.json documents %s, which is no route", op)
		}
	}
	if len(routes) < 20 {
		t.Errorf("only %d routes compared: %v", len(routes), slices.Sorted(func(yield func(string) bool) {
			for r := range routes {
				if !yield(r) {
					return
				}
			}
		}))
	}
}
