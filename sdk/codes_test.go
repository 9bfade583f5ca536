package sdk_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/pollcast/pollcast/poll"
	"github.com/pollcast/pollcast/sdk"
)

// TestCodesMatchServer: the SDK knows exactly the error codes the server
// speaks (package poll), so a code added to one and not the other fails.
func TestCodesMatchServer(t *testing.T) {
	server, client := sortedStrings(poll.Codes()), sortedStrings(sdk.Codes())
	if !slices.Equal(server, client) {
		t.Fatalf("poll.Codes() %q\nsdk.Codes()  %q", server, client)
	}
}

// TestCodesListEveryConstant: each package's Codes lists every constant of
// type Code it declares, once.
func TestCodesListEveryConstant(t *testing.T) {
	for dir, listed := range map[string][]string{".": sortedStrings(sdk.Codes()), "../poll": sortedStrings(poll.Codes())} {
		if declared := declaredCodes(t, dir); !slices.Equal(declared, listed) {
			t.Errorf("%s: constants of type Code %q\nCodes() %q", dir, declared, listed)
		}
	}
}

func sortedStrings[S ~string](codes []S) []string {
	var out []string
	for _, c := range codes {
		out = append(out, string(c))
	}
	slices.Sort(out)
	return out
}

// declaredCodes returns the values of the constants of type Code declared
// in the package in dir, sorted.
func declaredCodes(t testing.TB, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var codes []string
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Code" {
					continue
				}
				for _, v := range vs.Values {
					lit, ok := v.(*ast.BasicLit)
					if !ok {
						t.Fatalf("%s: a Code constant that is not a string literal", dir)
					}
					s, err := strconv.Unquote(lit.Value)
					if err != nil {
						t.Fatal(err)
					}
					codes = append(codes, s)
				}
			}
		}
	}
	slices.Sort(codes)
	return codes
}
