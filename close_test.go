package wsroom_test

import (
	"context"
	"errors"
	"iter"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/wstest"
)

// The close sequence (close.go): Close, what a handler's return or panic
// sends, the context's cause, and Shutdown.

func TestCloseSendsCodeAndReasonAfterQueuedMessages(t *testing.T) {
	wstest.CheckGoroutines(t)
	_, srv := serve(t, func(c *wsroom.Conn[chatOut], msgs iter.Seq2[chatIn, error]) error {
		for i := 1; i <= 3; i++ {
			if err := c.Send(chatOut{Type: "n", Seq: i}); err != nil {
				return err
			}
		}
		if err := c.Close(4000, "kicked"); err != nil {
			return err
		}
		if err := c.Close(4000, "again"); !errors.Is(err, wsroom.ErrClosed) {
			t.Errorf("second Close = %v, want ErrClosed", err)
		}
		if err := c.Send(chatOut{Type: "late"}); !errors.Is(err, wsroom.ErrClosed) {
			t.Errorf("Send after Close = %v, want ErrClosed", err)
		}
		for _, err := range msgs {
			t.Errorf("stream yielded %v after Close, want a quiet end", err)
		}
		return nil
	})
	c := wstest.Dial(t, srv.URL+"/ws/lobby")
	for i := 1; i <= 3; i++ {
		var out chatOut
		c.JSON(t, &out)
		if out.Seq != i {
			t.Fatalf("message %d has seq %d", i, out.Seq)
		}
	}
	if ev := c.Next(t); !ev.Closed || ev.Code != 4000 || ev.Reason != "kicked" {
		t.Fatalf("got %+v, want close 4000 kicked", ev)
	}
}

func TestCloseRejectsInvalidCodes(t *testing.T) {
	errs := make(chan error, 3)
	_, srv := serve(t, func(c *wsroom.Conn[chatOut], msgs iter.Seq2[chatIn, error]) error {
		for _, code := range []wsroom.StatusCode{999, 1005, 5000} {
			errs <- c.Close(code, "")
		}
		return nil
	})
	c := wstest.Dial(t, srv.URL+"/ws/lobby")
	for range 3 {
		if err := <-errs; err == nil || errors.Is(err, wsroom.ErrClosed) {
			t.Errorf("Close with a reserved code = %v, want an invalid-code error", err)
		}
	}
	c.Closed(t)
}

func TestContextIsCancelledWithCloseErrorWhenConnectionCloses(t *testing.T) {
	wstest.CheckGoroutines(t)
	causes := make(chan error, 1)
	_, srv := serve(t, func(c *wsroom.Conn[chatOut], msgs iter.Seq2[chatIn, error]) error {
		go func() {
			<-c.Context().Done()
			causes <- context.Cause(c.Context())
		}()
		for range msgs {
		}
		return nil
	})
	c := wstest.Dial(t, srv.URL+"/ws/lobby")
	_ = c.Conn().WriteClose(4001, []byte("bye"))
	select {
	case err := <-causes:
		var ce *wsroom.CloseError
		if !errors.As(err, &ce) || ce.Code != 4001 || ce.Reason != "bye" {
			t.Fatalf("cause %v, want CloseError 4001 bye", err)
		}
	case <-time.After(wstest.Timeout):
		t.Fatal("context not cancelled after the peer closed")
	}
}

func TestHandlerPanicClosesOnlyThatConnectionWith1011(t *testing.T) {
	wstest.CheckGoroutines(t)
	_, srv := serve(t, func(c *wsroom.Conn[chatOut], msgs iter.Seq2[chatIn, error]) error {
		for msg, err := range msgs {
			if err != nil {
				return err
			}
			if msg.Content == "panic" {
				panic("boom")
			}
			if err := c.Send(chatOut{Type: "ok", Content: msg.Content}); err != nil {
				return err
			}
		}
		return nil
	}, wsroom.WithLogger(discardLogger()))
	victim := wstest.Dial(t, srv.URL+"/ws/lobby")
	bystander := wstest.Dial(t, srv.URL+"/ws/lobby")
	victim.Send(t, chatIn{Type: "message", Content: "panic"})
	if ev := victim.Closed(t); ev.Code != 1011 {
		t.Fatalf("panicking handler: close %d, want 1011", ev.Code)
	}
	bystander.Send(t, chatIn{Type: "message", Content: "still here"})
	var out chatOut
	bystander.JSON(t, &out)
	if out.Content != "still here" {
		t.Fatalf("bystander got %+v", out)
	}
}

func TestHandlerErrorClosesWith1011AndReturnedCloseErrorChoosesCode(t *testing.T) {
	wstest.CheckGoroutines(t)
	_, srv := serve(t, func(c *wsroom.Conn[chatOut], msgs iter.Seq2[chatIn, error]) error {
		for msg, err := range msgs {
			if err != nil {
				return err
			}
			if msg.Content == "fail" {
				return errors.New("database down")
			}
			return &wsroom.CloseError{Code: 4403, Reason: "not allowed"}
		}
		return nil
	}, wsroom.WithLogger(discardLogger()))
	a := wstest.Dial(t, srv.URL+"/ws/lobby")
	a.Send(t, chatIn{Type: "message", Content: "fail"})
	if ev := a.Closed(t); ev.Code != 1011 {
		t.Fatalf("handler error: close %d, want 1011", ev.Code)
	}
	b := wstest.Dial(t, srv.URL+"/ws/lobby")
	b.Send(t, chatIn{Type: "message", Content: "x"})
	if ev := b.Closed(t); ev.Code != 4403 || ev.Reason != "not allowed" {
		t.Fatalf("returned CloseError: close %d %q, want 4403 not allowed", ev.Code, ev.Reason)
	}
}

func TestShutdownClosesEveryConnectionWith1001AndWaitsForHandlers(t *testing.T) {
	wstest.CheckGoroutines(t)
	var mu sync.Mutex
	returned := 0
	ep := wsroom.New(func(c *wsroom.Conn[chatOut], msgs iter.Seq2[chatIn, error]) error {
		defer func() {
			mu.Lock()
			returned++
			mu.Unlock()
		}()
		for _, err := range msgs {
			if err != nil {
				if wsroom.CloseStatus(err) != wsroom.StatusGoingAway {
					t.Errorf("stream ended with %v, want a 1001 CloseError", err)
				}
				return err
			}
		}
		t.Error("stream ended quietly on shutdown, want a 1001 CloseError")
		return nil
	})
	srv := httptest.NewServer(ep)
	defer srv.Close()
	var clients []*wstest.Client
	for range 10 {
		clients = append(clients, wstest.Dial(t, srv.URL))
	}
	wstest.WaitFor(t, "10 connections", func() bool { return ep.Stats().Connections == 10 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ep.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	mu.Lock()
	if returned != 10 {
		t.Errorf("Shutdown returned with %d of 10 handlers done", returned)
	}
	mu.Unlock()
	for _, c := range clients {
		if ev := c.Closed(t); ev.Code != 1001 {
			t.Fatalf("close %d, want 1001", ev.Code)
		}
	}
	if _, status, err := wstest.TryDial(srv.URL); err == nil || status != http.StatusServiceUnavailable {
		t.Fatalf("upgrade after Shutdown: status %d, err %v; want 503", status, err)
	}
}
