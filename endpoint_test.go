package wsroom_test

import (
	"iter"
	"runtime"
	"testing"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/wstest"
)

// The Endpoint (endpoint.go): an http.Handler behind any mux, and its
// Stats.

func TestEchoOverMuxPattern(t *testing.T) {
	wstest.CheckGoroutines(t)
	_, srv := serve(t, echo)
	c := wstest.Dial(t, srv.URL+"/ws/lobby")
	c.Send(t, chatIn{Type: "message", Content: "hi"})
	var out chatOut
	c.JSON(t, &out)
	if out.Type != "message" || out.Content != "hi" {
		t.Fatalf("echo = %+v, want the message back", out)
	}
}

func TestStatsCountTraffic(t *testing.T) {
	wstest.CheckGoroutines(t)
	ep, srv := serve(t, echo)
	c := wstest.Dial(t, srv.URL+"/ws/lobby")
	for range 3 {
		c.Send(t, chatIn{Type: "message", Content: "abc"})
		c.Message(t)
	}
	c.SendText(t, "not json")
	c.Message(t)
	// A frame is counted once its write returns, which may be after the
	// client has read it.
	wstest.WaitFor(t, "4 frames counted as written", func() bool { return ep.Stats().MessagesOut >= 4 })
	s := ep.Stats()
	if s.Connections != 1 || s.Accepted != 1 || s.MessagesIn != 4 || s.Rejected != 1 || s.MessagesOut < 4 ||
		s.BytesIn == 0 || s.BytesOut == 0 {
		t.Fatalf("stats %+v", s)
	}
	c.Close()
	wstest.WaitFor(t, "connection count back to zero", func() bool { return ep.Stats().Connections == 0 })
}

func TestHandlerThatEndsItsGoroutineIsClosedWith1011AndLeavesItsRooms(t *testing.T) {
	wstest.CheckGoroutines(t)
	rooms := wsroom.NewRooms[chatOut]()
	room := rooms.Room("lobby")
	_, srv := serve(t, func(c *wsroom.Conn[chatOut], msgs iter.Seq2[chatIn, error]) error {
		if _, err := rooms.Room("lobby").Join(c, chatOut{Type: "joined"}); err != nil {
			return err
		}
		for range msgs {
			runtime.Goexit() // as t.FailNow would in a handler under test
		}
		return nil
	}, wsroom.WithLogger(discardLogger()))
	c := wstest.Dial(t, srv.URL+"/ws/lobby")
	var joined chatOut
	c.JSON(t, &joined)
	c.Send(t, chatIn{Type: "message", Content: "exit"})
	if ev := c.Closed(t); ev.Code != 1011 {
		t.Fatalf("handler that ended its goroutine: close %d, want 1011", ev.Code)
	}
	wstest.WaitFor(t, "the room left", func() bool { return room.Len() == 0 })
}
