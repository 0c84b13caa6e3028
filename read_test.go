package wsroom_test

import (
	"errors"
	"iter"
	"strings"
	"testing"
	"time"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/wstest"
)

// The inbound stream (read.go): how a handler's range ends, the policies
// for input that is not a valid message, the read limit and invalid UTF-8.

func TestStreamEndsWithoutErrorWhenPeerClosesNormally(t *testing.T) {
	for _, code := range []uint16{1000, 1001} {
		wstest.CheckGoroutines(t)
		url, ends := recordEnd(t)
		c := wstest.Dial(t, url)
		c.Send(t, chatIn{Type: "message", Content: "x"})
		c.Message(t)
		_ = c.Conn().WriteClose(code, nil)
		if errs := waitEnd(t, ends); len(errs) != 0 {
			t.Fatalf("peer closed with %d: stream yielded %v, want a quiet end", code, errs)
		}
	}
}

func TestStreamYieldsCloseErrorOnceWhenPeerClosesWithOtherCode(t *testing.T) {
	wstest.CheckGoroutines(t)
	url, ends := recordEnd(t)
	c := wstest.Dial(t, url)
	_ = c.Conn().WriteClose(4002, []byte("client error"))
	errs := waitEnd(t, ends)
	var ce *wsroom.CloseError
	if len(errs) != 1 || !errors.As(errs[0], &ce) || ce.Code != 4002 || ce.Reason != "client error" {
		t.Fatalf("stream yielded %v, want one CloseError 4002", errs)
	}
}

func TestStreamYieldsErrorOnceWhenConnectionDropsWithoutCloseFrame(t *testing.T) {
	wstest.CheckGoroutines(t)
	url, ends := recordEnd(t)
	c := wstest.Dial(t, url)
	c.Send(t, chatIn{Type: "message", Content: "x"})
	c.Message(t)
	_ = c.NetConn().Close()
	errs := waitEnd(t, ends)
	if len(errs) != 1 || wsroom.CloseStatus(errs[0]) != 0 {
		t.Fatalf("stream yielded %v, want exactly one connection-lost error", errs)
	}
}

func TestBreakingOutOfRangeClosesConnection(t *testing.T) {
	wstest.CheckGoroutines(t)
	_, srv := serve(t, func(c *wsroom.Conn[chatOut], msgs iter.Seq2[chatIn, error]) error {
		for msg := range msgs {
			if msg.Content == "stop" {
				break
			}
		}
		return nil
	})
	c := wstest.Dial(t, srv.URL+"/ws/lobby")
	c.Send(t, chatIn{Type: "message", Content: "stop"})
	if ev := c.Closed(t); ev.Code != 1000 {
		t.Fatalf("close %d, want 1000", ev.Code)
	}
}

func TestStreamCanBeRangedOnlyOnce(t *testing.T) {
	wstest.CheckGoroutines(t)
	second := make(chan int, 1)
	_, srv := serve(t, func(c *wsroom.Conn[chatOut], msgs iter.Seq2[chatIn, error]) error {
		for range msgs {
			break
		}
		n := 0
		for range msgs {
			n++
		}
		second <- n
		return nil
	})
	c := wstest.Dial(t, srv.URL+"/ws/lobby")
	two := append(wstest.Frame(true, 1, []byte(`{"type":"message"}`)), wstest.Frame(true, 1, []byte(`{"type":"message"}`))...)
	if _, err := c.NetConn().Write(two); err != nil {
		t.Fatal(err)
	}
	if n := <-second; n != 0 {
		t.Fatalf("second range yielded %d messages, want none", n)
	}
	c.Closed(t)
}

func TestBinaryFrameGetsTheInvalidInputReply(t *testing.T) {
	wstest.CheckGoroutines(t)
	url, _ := recordEnd(t)
	c := wstest.Dial(t, url)
	if err := c.Conn().WriteMessage(2, []byte(`{"type":"message"}`)); err != nil {
		t.Fatal(err)
	}
	var reply struct{ Type, Error string }
	c.JSON(t, &reply)
	if reply.Type != "error" || reply.Error != "binary frames are not supported" {
		t.Fatalf("reply %+v", reply)
	}
	c.Send(t, chatIn{Type: "message", Content: "after"})
	var ack chatOut
	c.JSON(t, &ack)
	if ack.Content != "after" {
		t.Fatalf("connection unusable after binary frame: %+v", ack)
	}
}

func TestInvalidMessageGetsErrorReplyNamingFieldAndConnectionStaysOpen(t *testing.T) {
	wstest.CheckGoroutines(t)
	url, ends := recordEnd(t)
	c := wstest.Dial(t, url)
	cases := []struct{ send, reason string }{
		{`not json`, "invalid JSON: invalid character 'o' in literal null (expecting 'u')"},
		{`"a string"`, "got string, want object"},
		{`{"type":"shout"}`, "/type: value must be one of 'message', 'typing'"},
		{`{"type":"message","content":42}`, "/content: got number, want string"},
		{`{"content":"x"}`, "missing property 'type'"},
		{`{"type":"message","extra":1}`, "additional properties 'extra' not allowed"},
	}
	for _, tc := range cases {
		c.SendText(t, tc.send)
		var reply map[string]string
		c.JSON(t, &reply)
		if reply["type"] != "error" || reply["error"] != tc.reason || len(reply) != 2 {
			t.Errorf("send %s: reply %v, want error %q", tc.send, reply, tc.reason)
		}
	}
	c.Send(t, chatIn{Type: "message", Content: "valid"})
	var ack chatOut
	c.JSON(t, &ack)
	if ack.Content != "valid" {
		t.Fatalf("after rejections got %+v, want the ack of the valid message", ack)
	}
	c.Close()
	if errs := waitEnd(t, ends); len(errs) != 0 {
		t.Fatalf("handler saw %v: rejected messages must not reach it", errs)
	}
}

func TestInvalidCloseClosesWith1007(t *testing.T) {
	wstest.CheckGoroutines(t)
	url, ends := recordEnd(t, wsroom.WithInvalid(wsroom.InvalidClose))
	c := wstest.Dial(t, url)
	c.SendText(t, `{"type":"shout"}`)
	if ev := c.Closed(t); ev.Code != 1007 || ev.Reason != "/type: value must be one of 'message', 'typing'" {
		t.Fatalf("close %d %q, want 1007 naming /type", ev.Code, ev.Reason)
	}
	if errs := waitEnd(t, ends); len(errs) != 1 || wsroom.CloseStatus(errs[0]) != 1007 {
		t.Fatalf("stream yielded %v, want one 1007 CloseError", errs)
	}
}

func TestInvalidYieldHandsHandlerTypedError(t *testing.T) {
	wstest.CheckGoroutines(t)
	got := make(chan *wsroom.InvalidMessageError, 1)
	_, srv := serve(t, func(c *wsroom.Conn[chatOut], msgs iter.Seq2[chatIn, error]) error {
		for msg, err := range msgs {
			var bad *wsroom.InvalidMessageError
			if errors.As(err, &bad) {
				got <- bad
				continue
			}
			if err != nil {
				return err
			}
			if err := c.Send(chatOut{Type: "ack", Content: msg.Content}); err != nil {
				return err
			}
		}
		return nil
	}, wsroom.WithInvalid(wsroom.InvalidYield))
	c := wstest.Dial(t, srv.URL+"/ws/lobby")
	c.SendText(t, `{"type":"message","content":[1]}`)
	select {
	case bad := <-got:
		if bad.Field != "/content" {
			t.Fatalf("Field %q, want /content", bad.Field)
		}
	case <-time.After(wstest.Timeout):
		t.Fatal("handler never saw the invalid message")
	}
	c.Send(t, chatIn{Type: "typing"})
	var ack chatOut
	c.JSON(t, &ack)
	if ack.Type != "ack" {
		t.Fatalf("got %+v; the client must get no error reply under InvalidYield, and the connection stays open", ack)
	}
}

func TestErrorReplyShapeIsConfigurable(t *testing.T) {
	wstest.CheckGoroutines(t)
	type problem struct {
		Kind  string `json:"kind"`
		Field string `json:"field"`
	}
	url, _ := recordEnd(t, wsroom.WithErrorReply(func(e *wsroom.InvalidMessageError) any {
		return problem{Kind: "invalid", Field: e.Field}
	}))
	c := wstest.Dial(t, url)
	c.SendText(t, `{"type":"message","content":false}`)
	var p problem
	c.JSON(t, &p)
	if p != (problem{Kind: "invalid", Field: "/content"}) {
		t.Fatalf("reply %+v", p)
	}
}

func TestFrameOverReadLimitClosesWith1009AndOthersCarryOn(t *testing.T) {
	wstest.CheckGoroutines(t)
	_, srv := serve(t, echo)
	big := wstest.Dial(t, srv.URL+"/ws/lobby")
	other := wstest.Dial(t, srv.URL+"/ws/lobby")
	big.SendText(t, `{"type":"message","content":"`+strings.Repeat("a", wsroom.DefaultReadLimit)+`"}`)
	if ev := big.Closed(t); ev.Code != 1009 {
		t.Fatalf("close %d, want 1009", ev.Code)
	}
	other.Send(t, chatIn{Type: "message", Content: "fine"})
	var out chatOut
	other.JSON(t, &out)
	if out.Content != "fine" {
		t.Fatalf("other connection got %+v", out)
	}
}

func TestMessageAtReadLimitIsAccepted(t *testing.T) {
	wstest.CheckGoroutines(t)
	_, srv := serve(t, echo, wsroom.WithReadLimit(1000))
	c := wstest.Dial(t, srv.URL+"/ws/lobby")
	prefix, suffix := `{"type":"message","content":"`, `"}`
	c.SendText(t, prefix+strings.Repeat("a", 1000-len(prefix)-len(suffix))+suffix)
	c.Message(t)
	c.SendText(t, prefix+strings.Repeat("a", 1001-len(prefix)-len(suffix))+suffix)
	if ev := c.Closed(t); ev.Code != 1009 {
		t.Fatalf("one byte over the limit: close %d, want 1009", ev.Code)
	}
}

func TestInvalidUTF8InTextFrameClosesWith1007(t *testing.T) {
	wstest.CheckGoroutines(t)
	_, srv := serve(t, echo)
	c := wstest.Dial(t, srv.URL+"/ws/lobby")
	if _, err := c.NetConn().Write(wstest.Frame(true, 0x1, []byte("{\"type\":\"\xff\xfe\"}"))); err != nil {
		t.Fatal(err)
	}
	if ev := c.Closed(t); ev.Code != 1007 {
		t.Fatalf("close %d, want 1007", ev.Code)
	}
}

// recordEnd serves a handler that ranges to the end and reports the last
// error the stream yielded (nil for a quiet end), and how many errors.
func recordEnd(t *testing.T, opts ...wsroom.Option) (string, <-chan []error) {
	t.Helper()
	ends := make(chan []error, 1)
	_, srv := serve(t, func(c *wsroom.Conn[chatOut], msgs iter.Seq2[chatIn, error]) error {
		var errs []error
		for msg, err := range msgs {
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if err := c.Send(chatOut{Type: "ack", Content: msg.Content}); err != nil {
				errs = append(errs, err)
			}
		}
		ends <- errs
		return nil
	}, opts...)
	return srv.URL + "/ws/lobby", ends
}

func waitEnd(t *testing.T, ends <-chan []error) []error {
	t.Helper()
	select {
	case errs := <-ends:
		return errs
	case <-time.After(wstest.Timeout):
		t.Fatal("handler's range did not end")
	}
	return nil
}
