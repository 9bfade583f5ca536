package web

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// docs/api.md is the reference people read; openapi.json the one programs
// read. These tests fail when one of them gains an endpoint, an error code
// or an enum value that the other lacks, so a change to the API changes
// both.

const apiDocsPath = "../docs/api.md"

func loadAPIDocs(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(apiDocsPath)
	if err != nil {
		t.Fatalf("read %s: %v", apiDocsPath, err)
	}
	return string(b)
}

// operations returns the "METHOD /path" of every operation in openapi.json.
func operations(t *testing.T) []string {
	t.Helper()
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(OpenAPI, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	var ops []string
	for path, item := range doc.Paths {
		for method := range item {
			switch method {
			case "get", "put", "post", "delete", "options", "head", "patch", "trace":
				ops = append(ops, strings.ToUpper(method)+" "+path)
			}
		}
	}
	slices.Sort(ops)
	return ops
}

// docOperation is an endpoint written in docs/api.md as inline code:
// `GET /v1/polls/{id}`, possibly followed by a query (`GET /v1/polls?limit=`).
var docOperation = regexp.MustCompile("`(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS|TRACE) (/[^`?#\\s]*)[^`]*`")

// docV1Path is a path of the API written in docs/api.md as inline code
// without a method: `/v1/polls/{id}/live`.
var docV1Path = regexp.MustCompile("`(/v1/[^`?#\\s]*)[^`]*`")

// samePath reports whether a path written in the docs is the path template
// of openapi.json: equal segment by segment, a {param} of the template
// matching any one segment.
func samePath(template, written string) bool {
	ts, ws := strings.Split(template, "/"), strings.Split(written, "/")
	if len(ts) != len(ws) {
		return false
	}
	for i := range ts {
		if ts[i] != ws[i] && !(strings.HasPrefix(ts[i], "{") && strings.HasSuffix(ts[i], "}")) {
			return false
		}
	}
	return true
}

// TestAPIDocsEndpoints: every operation of openapi.json is written in
// docs/api.md as `METHOD /path`, and every endpoint docs/api.md names is
// an operation of openapi.json.
func TestAPIDocsEndpoints(t *testing.T) {
	md := loadAPIDocs(t)
	ops := operations(t)
	if len(ops) < 20 {
		t.Fatalf("only %d operations in openapi.json: %v", len(ops), ops)
	}
	for _, op := range ops {
		if !strings.Contains(md, "`"+op+"`") && !strings.Contains(md, "`"+op+"?") {
			t.Errorf("docs/api.md does not document `%s` (an operation of web/openapi.json)", op)
		}
	}
	for _, m := range docOperation.FindAllStringSubmatch(md, -1) {
		method, path := m[1], m[2]
		if !slices.ContainsFunc(ops, func(op string) bool {
			opMethod, template, _ := strings.Cut(op, " ")
			return opMethod == method && samePath(template, path)
		}) {
			t.Errorf("docs/api.md documents %s, which web/openapi.json does not have", m[0])
		}
	}
	for _, m := range docV1Path.FindAllStringSubmatch(md, -1) {
		if !slices.ContainsFunc(ops, func(op string) bool {
			_, template, _ := strings.Cut(op, " ")
			return samePath(template, m[1])
		}) {
			t.Errorf("docs/api.md names the path %s, which web/openapi.json does not have", m[0])
		}
	}
}

// pollCodes returns the error codes the poll package declares: the string
// constants of type Code in its non-test files.
func pollCodes(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("../poll/*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no Go files in ../poll: %v", err)
	}
	var codes []string
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, s := range gd.Specs {
				vs := s.(*ast.ValueSpec)
				if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Code" {
					continue
				}
				for _, v := range vs.Values {
					lit, ok := v.(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						t.Fatalf("%s: a Code constant that is not a string literal", fset.Position(v.Pos()))
					}
					code, err := strconv.Unquote(lit.Value)
					if err != nil {
						t.Fatal(err)
					}
					codes = append(codes, code)
				}
			}
		}
	}
	if len(codes) < 10 {
		t.Fatalf("only %d Code constants found in ../poll: %v", len(codes), codes)
	}
	return codes
}

// docErrorRow is a row of the error table of docs/api.md:
// | `already_voted` | 409 | ...
var docErrorRow = regexp.MustCompile("(?m)^\\|\\s*`([a-z_]+)`\\s*\\|\\s*(\\d{3})\\s*\\|")

// TestAPIDocsErrorCodes: every error code the server can answer (the poll
// package's codes and those of openapi.json's ErrorCode) has a row in the
// error table of docs/api.md with the status openapi.json gives it, and
// the table has no other code.
func TestAPIDocsErrorCodes(t *testing.T) {
	md := loadAPIDocs(t)
	ec := loadOpenAPI(t)["components"].(map[string]any)["schemas"].(map[string]any)["ErrorCode"].(map[string]any)
	status := map[string]int{}
	for code, st := range ec["x-status"].(map[string]any) {
		status[code] = int(st.(float64))
	}
	want := map[string]bool{}
	for _, c := range ec["enum"].([]any) {
		want[c.(string)] = true
	}
	for _, c := range pollCodes(t) {
		if !want[c] {
			t.Errorf("code %s of the poll package is not in web/openapi.json's ErrorCode", c)
		}
		want[c] = true
	}

	rows := map[string]int{}
	for _, m := range docErrorRow.FindAllStringSubmatch(md, -1) {
		st, _ := strconv.Atoi(m[2])
		if _, dup := rows[m[1]]; dup {
			t.Errorf("docs/api.md: the error table lists %s twice", m[1])
		}
		rows[m[1]] = st
	}
	for code := range want {
		st, ok := rows[code]
		switch {
		case !ok:
			t.Errorf("docs/api.md: no row for error code %s in the error table (| `%s` | <status> | <meaning> |)", code, code)
		case st != status[code]:
			t.Errorf("docs/api.md: error code %s comes with %d, web/openapi.json says %d", code, st, status[code])
		}
	}
	for code := range rows {
		if !want[code] {
			t.Errorf("docs/api.md: the error table lists %s, which the server never answers", code)
		}
	}
}

// TestAPIDocsEnums: every value of the string enums of openapi.json's
// schemas (poll kinds, dedupe policies, visibilities, statuses, roles) and
// every live message type is written in docs/api.md.
func TestAPIDocsEnums(t *testing.T) {
	md := loadAPIDocs(t)
	schemas := loadOpenAPI(t)["components"].(map[string]any)["schemas"].(map[string]any)
	for name, s := range schemas {
		s := s.(map[string]any)
		if enum, ok := s["enum"].([]any); ok && s["type"] == "string" && name != "ErrorCode" {
			for _, v := range enum {
				if !strings.Contains(md, "`"+v.(string)+"`") {
					t.Errorf("docs/api.md does not mention `%s` (schema %s of web/openapi.json)", v, name)
				}
			}
		}
		// Live messages: a schema whose "type" property is a constant.
		for _, part := range append([]any{s}, asSlice(s["allOf"])...) {
			props, _ := part.(map[string]any)["properties"].(map[string]any)
			typ, _ := props["type"].(map[string]any)
			if c, ok := typ["const"].(string); ok && !strings.Contains(md, `{"type":"`+c+`"`) {
				t.Errorf(`docs/api.md has no example of the %s message ({"type":"%s",...}) of web/openapi.json`, name, c)
			}
		}
	}
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}
