// Package asyncapitest checks generated AsyncAPI documents the way a
// client team's tools would: against the official AsyncAPI 3.0.0 JSON
// Schema (vendored in testdata, see testdata/README.md), and with the
// AsyncAPI Initiative's own parser in Node (node/parse.mjs).
package asyncapitest

import (
	"bytes"
	"context"
	_ "embed"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	jsv "github.com/santhosh-tekuri/jsonschema/v6"
)

//go:embed testdata/asyncapi-3.0.0.schema.json
var specSchema []byte

const specURL = "http://asyncapi.com/definitions/3.0.0/asyncapi.json"

// Validate fails the test unless doc is valid against the AsyncAPI 3.0.0
// JSON Schema, with every keyword enforced, formats included.
func Validate(t testing.TB, doc []byte) {
	t.Helper()
	schema, err := jsv.UnmarshalJSON(bytes.NewReader(specSchema))
	if err != nil {
		t.Fatal(err)
	}
	c := jsv.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource(specURL, schema); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(specURL)
	if err != nil {
		t.Fatalf("compile the AsyncAPI 3.0.0 schema: %v", err)
	}
	v, err := jsv.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		t.Fatalf("the document is not JSON: %v", err)
	}
	if err := sch.Validate(v); err != nil {
		t.Fatalf("the document is not valid AsyncAPI 3.0.0: %v\n%s", err, doc)
	}
}

// Parse fails the test unless @asyncapi/parser parses doc with no error.
// Without node or node/node_modules (npm ci in node/) it skips the test,
// unless WSROOM_CI is set: then it fails.
func Parse(t testing.TB, doc []byte) {
	t.Helper()
	_, here, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(here), "node")
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(dir, "node_modules", "@asyncapi", "parser"))
	}
	if err != nil {
		if os.Getenv("WSROOM_CI") != "" {
			t.Fatalf("the AsyncAPI parser is missing (%v): run npm ci in %s", err, dir)
		}
		t.Skipf("the AsyncAPI parser is missing (%v): run npm ci in %s", err, dir)
	}
	file := filepath.Join(t.TempDir(), "asyncapi.json")
	if err := os.WriteFile(file, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, filepath.Join(dir, "parse.mjs"), file).CombinedOutput()
	if err != nil {
		t.Fatalf("@asyncapi/parser refused the document (%v):\n%s\n%s", err, out, doc)
	}
	t.Logf("@asyncapi/parser: %s", bytes.TrimSpace(out))
}
