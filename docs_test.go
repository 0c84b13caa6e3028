package wsroom_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"regexp"
	"strings"
	"testing"
)

// The Go snippets of README.md and of the package doc are quoted from
// Example functions, which compile (and some run) with the tests: a
// snippet that is not found, line for line, in an Example's body has
// drifted from code that compiles.

// exampleFiles are the files whose Example functions the docs may quote.
var exampleFiles = []string{
	"example_test.go", "presence_example_test.go", "redisbroker/presence_example_test.go",
	"natsbroker/example_test.go",
	"pgbroker/example_test.go",
	"redisbroker/example_test.go",
	"wsroomtest/example_test.go", "asyncapi/example_test.go", "wsroomprom/example_test.go",
	"client/example_test.go",
}

func TestDocSnippetsAreQuotedFromExamples(t *testing.T) {
	bodies := exampleBodies(t)
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	snippets := readmeSnippets(string(readme))
	if len(snippets) < 3 {
		t.Fatalf("found %d Go snippets in README.md: the extraction is broken", len(snippets))
	}
	for _, sn := range snippets {
		if !quoted(sn, bodies) {
			t.Errorf("README.md snippet is not quoted from an Example function of %v:\n%s", exampleFiles, sn)
		}
	}
	pkgDoc := docSnippets(t, "doc.go")
	if len(pkgDoc) == 0 {
		t.Fatal("found no code in doc.go's package comment: the extraction is broken")
	}
	for _, sn := range pkgDoc {
		if !quoted(sn, bodies) {
			t.Errorf("doc.go snippet is not quoted from an Example function of %v:\n%s", exampleFiles, sn)
		}
	}
}

var goFence = regexp.MustCompile("(?s)```go\n(.*?)```")

// readmeSnippets returns the bodies of the ```go blocks of a Markdown text.
func readmeSnippets(md string) []string {
	var out []string
	for _, m := range goFence.FindAllStringSubmatch(md, -1) {
		out = append(out, m[1])
	}
	return out
}

// docSnippets returns the code blocks (indented lines) of a Go file's
// package comment, each run of consecutive indented lines one block.
func docSnippets(t *testing.T, file string) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	var cur []string
	flush := func() {
		if len(cur) > 0 {
			out = append(out, strings.Join(cur, "\n"))
			cur = nil
		}
	}
	for _, line := range strings.Split(f.Doc.Text(), "\n") {
		switch {
		case strings.HasPrefix(line, "\t"):
			cur = append(cur, line)
		case strings.TrimSpace(line) == "" && len(cur) > 0:
			cur = append(cur, "")
		default:
			flush()
		}
	}
	flush()
	return out
}

// exampleBodies returns the source of every Example function's body in
// exampleFiles.
func exampleBodies(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, name := range exampleFiles {
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if ok && strings.HasPrefix(fn.Name.Name, "Example") && fn.Body != nil {
				out = append(out, string(src[fset.Position(fn.Body.Lbrace).Offset:fset.Position(fn.Body.Rbrace).Offset]))
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("no Example functions found")
	}
	return out
}

// quoted reports whether the snippet's lines, without their indentation
// and blank lines, appear consecutively in one of the bodies.
func quoted(snippet string, bodies []string) bool {
	want := codeLines(snippet)
	if len(want) == 0 {
		return true
	}
	for _, b := range bodies {
		have := codeLines(b)
		for i := 0; i+len(want) <= len(have); i++ {
			if equalLines(have[i:i+len(want)], want) {
				return true
			}
		}
	}
	return false
}

func codeLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

func equalLines(a, b []string) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
