package asyncapi_test

import (
	"bytes"
	"encoding/json"
	"iter"
	"testing"

	jsv "github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/asyncapi"
	"github.com/wsroom/wsroom/internal/wstest"
	"github.com/wsroom/wsroom/wsroomtest"
)

// The documented error reply is what a real endpoint sends: its schema,
// taken from the document, accepts the replies to invalid messages and
// refuses the endpoint's ordinary messages.
func TestDocumentedErrorReplyIsWhatTheEndpointSends(t *testing.T) {
	wstest.CheckGoroutines(t)
	ep := wsroom.New(echo)
	doc, err := asyncapi.New(asyncapi.Info{Title: "echo", Version: "1"}, asyncapi.Endpoint("/echo", ep))
	if err != nil {
		t.Fatal(err)
	}
	schema := compileComponent(t, doc.JSON(), "wsroomErrorReply")

	c := wsroomtest.Dial[ClientMessage, json.RawMessage](t, wsroomtest.NewServer(t, ep), "/echo")
	for _, bad := range []string{`not json`, `{"type":"shout"}`, `{"type":"message","extra":1}`} {
		c.SendText(bad)
		reply := c.ReceiveText()
		if err := schema.Validate(unmarshal(t, reply)); err != nil {
			t.Errorf("the reply to %s, %s, breaks the documented error reply: %v", bad, reply, err)
		}
	}
	c.Send(ClientMessage{Type: "message"})
	if reply := c.ReceiveText(); schema.Validate(unmarshal(t, reply)) == nil {
		t.Errorf("an ordinary message, %s, passes for an error reply", reply)
	}
}

// echo sends back each message it receives.
func echo(c *wsroom.Conn[ClientMessage], msgs iter.Seq2[ClientMessage, error]) error {
	for m, err := range msgs {
		if err != nil {
			return err
		}
		if err := c.Send(m); err != nil {
			return err
		}
	}
	return nil
}

// compileComponent compiles the schema of that name in the document's
// components, with the document as its base.
func compileComponent(t *testing.T, doc []byte, name string) *jsv.Schema {
	t.Helper()
	const url = "wsroom:///asyncapi.json"
	c := jsv.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource(url, unmarshal(t, string(doc))); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(url + "#/components/schemas/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func unmarshal(t *testing.T, s string) any {
	t.Helper()
	v, err := jsv.UnmarshalJSON(bytes.NewReader([]byte(s)))
	if err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	return v
}
