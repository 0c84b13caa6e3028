package wsroom_test

import (
	"testing"

	"github.com/wsroom/wsroom/internal/wstest"
)

func TestEchoSmoke(t *testing.T) {
	wstest.CheckGoroutines(t)
	_, srv := serve(t, echo)
	c := wstest.Dial(t, srv.URL+"/ws/lobby")
	c.Send(t, chatIn{Type: "message", Content: "hi"})
	var out chatOut
	c.JSON(t, &out)
	if out.Content != "hi" {
		t.Fatalf("got %+v", out)
	}
	c.SendText(t, `{"type":"nope"}`)
	t.Logf("%s", c.Message(t))
}
