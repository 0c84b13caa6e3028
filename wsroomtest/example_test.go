package wsroomtest_test

import (
	"iter"
	"testing"
	"time"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/wstest"
	"github.com/wsroom/wsroom/wsroomtest"
)

type In struct {
	Text string `json:"text"`
}

type Out struct {
	Type  string `json:"type"`
	From  string `json:"from,omitempty"`
	Text  string `json:"text,omitempty"`
	Error string `json:"error,omitempty"`
}

// greet answers each message, signed with the name the client gave.
func greet(c *wsroom.Conn[Out], msgs iter.Seq2[In, error]) error {
	from := c.Request().URL.Query().Get("name")
	for m, err := range msgs {
		if err != nil {
			return err
		}
		if err := c.Send(Out{Type: "message", From: from, Text: m.Text}); err != nil {
			return err
		}
	}
	return nil
}

// run is what the Example does with its test: TestExample runs it.
var run = func(test func(*testing.T)) {}

// A complete test of an endpoint: serve it, dial a typed client, assert
// what arrives, what does not, and how it ends.
func Example() {
	TestGreet := func(t *testing.T) {
		srv := wsroomtest.NewServer(t, wsroom.New(greet))
		c := wsroomtest.Dial[In, Out](t, srv, "/?name=ann")
		c.Send(In{Text: "hi"})
		c.Expect(Out{Type: "message", From: "ann", Text: "hi"})

		c.SendText(`{"text":42}`) // breaks In's schema: answered, not fatal
		c.ExpectMatch("an error reply", func(o Out) bool { return o.Type == "error" })
		c.ExpectNothing(50 * time.Millisecond)

		c.CloseWith(4000, "done")
	}
	run(TestGreet)
}

func TestExample(t *testing.T) {
	wstest.CheckGoroutines(t)
	run = func(test func(*testing.T)) { test(t) }
	Example()
}
