package wsroom

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	"github.com/invopop/jsonschema"
	jsv "github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/wsroom/wsroom/internal/fastschema"
	"github.com/wsroom/wsroom/internal/strictjson"
)

// schemas holds the JSON Schemas reflected from an endpoint's In and Out,
// the compiled validator of In and the strict decoder that feeds it.
type schemas struct {
	in, out   []byte
	validator *jsv.Schema
	strict    *strictjson.Decoder
}

// compileSchemas reflects the schemas of in and out and compiles the one of
// in with every keyword enforced, formats and content included.
func compileSchemas(r *jsonschema.Reflector, in, out any) (*schemas, error) {
	inJSON, err := json.Marshal(r.Reflect(in))
	if err != nil {
		return nil, fmt.Errorf("wsroom: reflect schema of In: %w", err)
	}
	outJSON, err := json.Marshal(r.Reflect(out))
	if err != nil {
		return nil, fmt.Errorf("wsroom: reflect schema of Out: %w", err)
	}
	doc, err := jsv.UnmarshalJSON(bytes.NewReader(inJSON))
	if err != nil {
		return nil, fmt.Errorf("wsroom: parse schema of In: %w", err)
	}
	const url = "wsroom:///in.json"
	c := jsv.NewCompiler()
	c.AssertFormat()
	c.AssertContent()
	if err := c.AddResource(url, doc); err != nil {
		return nil, fmt.Errorf("wsroom: load schema of In: %w", err)
	}
	v, err := c.Compile(url + rootRef(doc))
	if err != nil {
		return nil, fmt.Errorf("wsroom: compile schema of In: %w", err)
	}
	return &schemas{in: inJSON, out: outJSON, validator: v, strict: strictjson.New(reflect.TypeOf(in), validation(v))}, nil
}

// validation returns the check of messages against v: the quick check of
// its common keywords, and the full validator for what the quick check
// does not accept, so that the full validator decides and words every
// rejection. The full validator allocates a scope and a sub-validator per
// field and tells an integer by formatting it and parsing it into
// math/big; the quick check allocates nothing on a chat message.
func validation(v *jsv.Schema) func(doc any) error {
	quick, ok := fastschema.Compile(v)
	if !ok {
		return v.Validate
	}
	return func(doc any) error {
		if quick.Accepts(doc) {
			return nil
		}
		return v.Validate(doc)
	}
}

// rootRef returns the fragment a schema whose root only refers to one of
// its definitions ({"$ref": "#/$defs/T", "$defs": ...}, invopop's shape)
// refers to, "" for any other schema. Compiling that definition directly
// spares the validator a level of reference on every message (a tenth of
// its time on a flat message), and keeps the schema served to clients
// exactly as reflected.
func rootRef(doc any) string {
	root, ok := doc.(map[string]any)
	if !ok {
		return ""
	}
	for key := range root {
		switch key {
		case "$schema", "$id", "$ref", "$defs":
		default:
			return ""
		}
	}
	ref, _ := root["$ref"].(string)
	if !strings.HasPrefix(ref, "#/$defs/") {
		return ""
	}
	return ref
}
