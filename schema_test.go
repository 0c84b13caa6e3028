package wsroom_test

import (
	"bytes"
	"iter"
	"testing"

	"github.com/invopop/jsonschema"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/wstest"
)

// The schemas reflected from a handler's types (schema.go): compiled as
// reflected, whatever the shape of their root.

// treeNode is a recursive message type: its schema refers to itself.
type treeNode struct {
	Name     string     `json:"name"`
	Children []treeNode `json:"children,omitempty"`
}

// TestRecursiveMessageTypeIsValidatedAtEveryDepth: a type that contains
// itself is validated all the way down (the root of its schema is compiled
// from its definition), and the schema served is the one reflected.
func TestRecursiveMessageTypeIsValidatedAtEveryDepth(t *testing.T) {
	wstest.CheckGoroutines(t)
	ep, srv := serve(t, func(c *wsroom.Conn[treeNode], msgs iter.Seq2[treeNode, error]) error {
		for msg, err := range msgs {
			if err != nil {
				return err
			}
			if err := c.Send(msg); err != nil {
				return err
			}
		}
		return nil
	})
	if in, _ := ep.Schemas(); !bytes.Contains(in, []byte(`"$ref":"#/$defs/treeNode"`)) {
		t.Fatalf("served schema of In is not the reflected one: %s", in)
	}
	c := wstest.Dial(t, srv.URL+"/ws/trees")
	valid := `{"name":"a","children":[{"name":"b","children":[{"name":"c"}]}]}`
	c.SendText(t, valid)
	if got := string(c.Message(t)); got != valid {
		t.Fatalf("valid tree echoed as %s, want %s", got, valid)
	}
	c.SendText(t, `{"name":"a","children":[{"name":"b","children":[{"name":"c","colour":"red"}]}]}`)
	var reply map[string]string
	c.JSON(t, &reply)
	if want := "/children/0/children/0: additional properties 'colour' not allowed"; reply["error"] != want {
		t.Fatalf("invalid leaf: reply %v, want error %q", reply, want)
	}
	c.Close()
}

// TestSchemaWithInlineRootIsEnforced: a reflector that writes the root
// schema out in full (no $ref) is compiled as it is.
func TestSchemaWithInlineRootIsEnforced(t *testing.T) {
	wstest.CheckGoroutines(t)
	url, ends := recordEnd(t, wsroom.WithReflector(&jsonschema.Reflector{ExpandedStruct: true}))
	c := wstest.Dial(t, url)
	c.SendText(t, `{"type":"shout"}`)
	var reply map[string]string
	c.JSON(t, &reply)
	if want := "/type: value must be one of 'message', 'typing'"; reply["error"] != want {
		t.Fatalf("reply %v, want error %q", reply, want)
	}
	c.Send(t, chatIn{Type: "message", Content: "valid"})
	var ack chatOut
	c.JSON(t, &ack)
	if ack.Content != "valid" {
		t.Fatalf("got %+v, want the ack of the valid message", ack)
	}
	c.Close()
	if errs := waitEnd(t, ends); len(errs) != 0 {
		t.Fatalf("handler saw %v", errs)
	}
}
