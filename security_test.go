package wsroom_test

import (
	"iter"
	"strings"
	"testing"

	"github.com/invopop/jsonschema"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/wstest"
)

// guardedIn has optional fields whose values the schema restricts.
type guardedIn struct {
	Type    string        `json:"type" jsonschema:"enum=message,enum=chat"`
	Content string        `json:"content,omitempty" jsonschema:"maxLength=16"`
	Items   []guardedItem `json:"items,omitempty"`
	Opts    *guardedOpts  `json:"opts,omitempty"`
}

type guardedItem struct {
	Name string `json:"name"`
	Kind string `json:"kind,omitempty" jsonschema:"enum=a,enum=b"`
}

type guardedOpts struct {
	Level string `json:"level,omitempty" jsonschema:"enum=low,enum=high"`
}

// violation says which constraint of guardedIn's schema m breaks, if any.
func (m guardedIn) violation() string {
	switch {
	case m.Type != "message" && m.Type != "chat":
		return "type " + m.Type
	case len([]rune(m.Content)) > 16:
		return "content longer than 16"
	case m.Opts != nil && m.Opts.Level != "" && m.Opts.Level != "low" && m.Opts.Level != "high":
		return "opts.level " + m.Opts.Level
	}
	for _, it := range m.Items {
		if it.Kind != "" && it.Kind != "a" && it.Kind != "b" {
			return "items[].kind " + it.Kind
		}
	}
	return ""
}

// TestSchemaCannotBeBypassedByDuplicateOrCaseVariantKeys: the value the
// handler receives must satisfy the schema, not only the bytes that were
// validated. encoding/json, which fills the Go value, matches keys without
// regard to case and merges a repeated key into what an earlier one
// decoded; the validator takes the last of repeated keys and matches case.
// A message that plays on the difference must be rejected, under the
// default reflector and under AllowAdditionalProperties (which the README
// suggests for accepting unknown fields).
func TestSchemaCannotBeBypassedByDuplicateOrCaseVariantKeys(t *testing.T) {
	wstest.CheckGoroutines(t)
	long := strings.Repeat("x", 40)
	inputs := []struct{ name, msg string }{
		{"repeated array merges into the first's elements", `{"type":"chat","items":[{"name":"n","kind":"admin"}],"items":[{"name":"n"}]}`},
		{"repeated object merges into the first", `{"type":"chat","opts":{"level":"root"},"opts":{}}`},
		{"case variant of a field", `{"type":"chat","TYPE":"admin"}`},
		{"case variant after the field", `{"type":"chat","Content":"` + long + `"}`},
		{"Unicode case folding (Kelvin sign, U+212A)", `{"type":"chat","items":[{"name":"n","kind":"a","\u212aind":"admin"}]}`},
	}
	for _, mode := range []struct {
		name string
		opts []wsroom.Option
	}{
		{"default reflector", nil},
		{"AllowAdditionalProperties", []wsroom.Option{wsroom.WithReflector(&jsonschema.Reflector{AllowAdditionalProperties: true})}},
	} {
		seen := make(chan guardedIn, 1)
		_, srv := serve(t, func(c *wsroom.Conn[chatOut], msgs iter.Seq2[guardedIn, error]) error {
			for m, err := range msgs {
				if err != nil {
					return err
				}
				seen <- m
				_ = c.Send(chatOut{Type: "accepted"})
			}
			return nil
		}, mode.opts...)
		c := wstest.Dial(t, srv.URL+"/ws/lobby")
		for _, in := range inputs {
			c.SendText(t, in.msg)
			var out chatOut
			c.JSON(t, &out)
			if out.Type != "accepted" {
				continue // rejected: fine
			}
			if v := (<-seen).violation(); v != "" {
				t.Errorf("%s, %s: the handler received a value the schema forbids (%s) from %s", mode.name, in.name, v, in.msg)
			}
		}
		c.Close()
	}
}
