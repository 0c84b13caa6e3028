package wsroom_test

import (
	"iter"
	"strings"
	"testing"

	"github.com/invopop/jsonschema"
	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/wstest"
)

// restrictedIn has optional fields whose values the schema restricts.
type restrictedIn struct {
	Type    string           `json:"type" jsonschema:"enum=message,enum=chat"`
	Content string           `json:"content,omitempty" jsonschema:"maxLength=16"`
	Items   []restrictedItem `json:"items,omitempty"`
	Opts    *restrictedOpts  `json:"opts,omitempty"`
}

type restrictedItem struct {
	Name string `json:"name"`
	Kind string `json:"kind,omitempty" jsonschema:"enum=a,enum=b"`
}

type restrictedOpts struct {
	Level string `json:"level,omitempty" jsonschema:"enum=low,enum=high"`
}

// violation says which constraint of restrictedIn's schema m breaks, if any.
func (m restrictedIn) violation() string {
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
		seen := make(chan restrictedIn, 1)
		_, srv := serve(t, func(c *wsroom.Conn[chatOut], msgs iter.Seq2[restrictedIn, error]) error {
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

// TestRejectionNamesViolationsInOneOrder: the validator walks keys in map
// order, and a sender must still get one reply for one message, listing
// the message's own violations first and then field by field.
func TestRejectionNamesViolationsInOneOrder(t *testing.T) {
	wstest.CheckGoroutines(t)
	_, srv := serve(t, func(c *wsroom.Conn[chatOut], msgs iter.Seq2[restrictedIn, error]) error {
		for _, err := range msgs {
			if err != nil {
				return err
			}
		}
		return nil
	})
	c := wstest.Dial(t, srv.URL+"/ws/lobby")
	defer c.Close()
	const msg = `{"z":1,"type":"x","y":2,"opts":{"level":"mid"},"x":3,"w":4}`
	const want = "additional properties 'w', 'x', 'y', 'z' not allowed; /opts/level: value must be one of 'low', 'high'; /type: value must be one of 'message', 'chat'"
	for range 20 {
		c.SendText(t, msg)
		var reply struct{ Type, Error string }
		c.JSON(t, &reply)
		if reply.Type != "error" || reply.Error != want {
			t.Fatalf("%s drew %+v, want the error %q", msg, reply, want)
		}
	}
}
