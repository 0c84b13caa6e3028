package client

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/invopop/jsonschema"
	jsv "github.com/santhosh-tekuri/jsonschema/v6"
)

// validator checks received messages against a JSON Schema, with every
// keyword enforced, formats included, as the server checks what it
// receives.
type validator struct{ schema *jsv.Schema }

// newValidator compiles schema, or, when it is empty, the schema of
// Recv as wsroom reflects it by default.
func newValidator[Recv any](schema []byte) (*validator, error) {
	if len(schema) == 0 {
		b, err := json.Marshal(new(jsonschema.Reflector).Reflect(new(Recv)))
		if err != nil {
			return nil, fmt.Errorf("client: reflect the schema of %T: %w", *new(Recv), err)
		}
		schema = b
	}
	doc, err := jsv.UnmarshalJSON(bytes.NewReader(schema))
	if err != nil {
		return nil, fmt.Errorf("client: parse the schema: %w", err)
	}
	const url = "wsroom:///recv.json"
	c := jsv.NewCompiler()
	c.AssertFormat()
	c.AssertContent()
	if err := c.AddResource(url, doc); err != nil {
		return nil, fmt.Errorf("client: load the schema: %w", err)
	}
	s, err := c.Compile(url)
	if err != nil {
		return nil, fmt.Errorf("client: compile the schema: %w", err)
	}
	return &validator{schema: s}, nil
}

// check validates a message. The fields seq and epoch that the server
// puts in front of a recorded message are the protocol's, not Recv's:
// they are taken out first.
func (v *validator) check(data []byte, recorded bool) error {
	inst, err := jsv.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return err
	}
	if obj, ok := inst.(map[string]any); ok && recorded {
		delete(obj, "seq")
		delete(obj, "epoch")
	}
	return v.schema.Validate(inst)
}
