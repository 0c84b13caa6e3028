package asyncapi

import (
	"encoding/json"
	"fmt"
	"strings"
)

// payload is a schema as the document holds it: the definitions of a
// reflected schema lifted into components.schemas, and what remains of the
// root schema, which is often just a reference to one of them.
type payload struct {
	name string         // the root's definition name, "" for an inline schema
	root map[string]any // the payload schema, references rewritten
	defs map[string]any // definitions to add to components.schemas
}

const defsPrefix, componentsPrefix = "#/$defs/", "#/components/schemas/"

// liftSchema prepares a JSON Schema (draft 2020-12, as wsroom reflects it)
// for the document: "$schema" and "$id" go, "$defs" move to the
// components, and every "$ref" follows them. A root that only refers to a
// definition names the message.
func liftSchema(raw []byte) (payload, error) {
	var root map[string]any
	if err := json.Unmarshal(raw, &root); err != nil {
		return payload{}, fmt.Errorf("asyncapi: schema: %w", err)
	}
	p := payload{defs: map[string]any{}}
	if defs, ok := root["$defs"].(map[string]any); ok {
		for name, d := range defs {
			p.defs[name] = rewriteRefs(d)
		}
	}
	delete(root, "$defs")
	delete(root, "$schema")
	delete(root, "$id")
	p.root = rewriteRefs(root).(map[string]any)
	if ref, ok := p.root["$ref"].(string); ok && len(p.root) == 1 {
		p.name = strings.TrimPrefix(ref, componentsPrefix)
	}
	return p, nil
}

// rewriteRefs returns v with every "$ref" to "#/$defs/..." pointing into
// components.schemas instead.
func rewriteRefs(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if s, ok := e.(string); ok && k == "$ref" && strings.HasPrefix(s, defsPrefix) {
				v[k] = componentsPrefix + strings.TrimPrefix(s, defsPrefix)
				continue
			}
			v[k] = rewriteRefs(e)
		}
	case []any:
		for i, e := range v {
			v[i] = rewriteRefs(e)
		}
	}
	return v
}
