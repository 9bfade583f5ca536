package web

import (
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/pollcast/pollcast/poll"
)

// The routes of the router and of the document are compared in
// cmd/pollcast (TestOpenAPIDocumentsEveryRoute), on the handler as wired.

func loadOpenAPI(t *testing.T) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(OpenAPI, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.1.") {
		t.Fatalf("openapi version %q, want 3.1.x", v)
	}
	return doc
}

// TestOpenAPIErrorCodes: the document lists every error code the server
// can answer, each with the status problem.go gives it, and nothing else.
func TestOpenAPIErrorCodes(t *testing.T) {
	doc := loadOpenAPI(t)
	ec := doc["components"].(map[string]any)["schemas"].(map[string]any)["ErrorCode"].(map[string]any)
	want := map[string]int{"method_not_allowed": http.StatusMethodNotAllowed}
	for code, status := range statusOf {
		want[string(code)] = status
	}
	var enum []string
	for _, v := range ec["enum"].([]any) {
		enum = append(enum, v.(string))
	}
	if got, w := slices.Sorted(slices.Values(enum)), slices.Sorted(maps.Keys(want)); !slices.Equal(got, w) {
		t.Errorf("ErrorCode enum %v\nwant (problem.go) %v", got, w)
	}
	for code, st := range ec["x-status"].(map[string]any) {
		if int(st.(float64)) != want[code] {
			t.Errorf("x-status of %s: %v, problem.go says %d", code, st, want[code])
		}
	}
	for code := range want {
		if code != "method_not_allowed" && titleOf[poll.Code(code)] == "" {
			t.Errorf("code %s has no title in problem.go", code)
		}
	}
}

// TestOpenAPIConsistent: every $ref resolves, operation ids are unique,
// path parameters are declared, and every problem example sits under the
// status its code comes with.
func TestOpenAPIConsistent(t *testing.T) {
	doc := loadOpenAPI(t)
	resolve := func(ref string) any {
		var v any = doc
		for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[part]
		}
		return v
	}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok && resolve(ref) == nil {
				t.Errorf("%s: $ref %s does not resolve", path, ref)
			}
			for k, e := range v {
				walk(path+"/"+k, e)
			}
		case []any:
			for i, e := range v {
				walk(path+"/"+strconv.Itoa(i), e)
			}
		}
	}
	walk("#", doc)

	statusOfCode := map[string]int{"method_not_allowed": 405}
	for c, s := range statusOf {
		statusOfCode[string(c)] = s
	}
	deref := func(v any) map[string]any {
		m, _ := v.(map[string]any)
		if ref, ok := m["$ref"].(string); ok {
			m, _ = resolve(ref).(map[string]any)
		}
		return m
	}
	ids := map[string]string{}
	for path, item := range doc["paths"].(map[string]any) {
		for method, o := range item.(map[string]any) {
			op := o.(map[string]any)
			where := strings.ToUpper(method) + " " + path
			id, _ := op["operationId"].(string)
			if id == "" || ids[id] != "" {
				t.Errorf("%s: operationId %q missing or also used by %s", where, id, ids[id])
			}
			ids[id] = where
			declared := map[string]bool{}
			params, _ := op["parameters"].([]any)
			for _, p := range params {
				if p := deref(p); p["in"] == "path" {
					declared[p["name"].(string)] = true
				}
			}
			for _, seg := range strings.Split(path, "/") {
				if strings.HasPrefix(seg, "{") && !declared[strings.Trim(seg, "{}")] {
					t.Errorf("%s: path parameter %s not declared", where, seg)
				}
			}
			for status, r := range op["responses"].(map[string]any) {
				content, _ := deref(r)["content"].(map[string]any)
				pj, _ := content["application/problem+json"].(map[string]any)
				examples, _ := pj["examples"].(map[string]any)
				for code := range examples {
					if strconv.Itoa(statusOfCode[code]) != status {
						t.Errorf("%s: example %s under %s, but it comes with %d", where, code, status, statusOfCode[code])
					}
				}
			}
		}
	}
}
