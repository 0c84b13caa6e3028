package wsroom_test

import (
	"context"
	"errors"
	"iter"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/wstest"
)

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

func TestNonUpgradeRequestGets426(t *testing.T) {
	_, srv := serve(t, echo)
	resp, err := http.Get(srv.URL + "/ws/lobby")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUpgradeRequired || resp.Header.Get("Upgrade") != "websocket" {
		t.Fatalf("status %d, Upgrade %q; want 426 and Upgrade: websocket", resp.StatusCode, resp.Header.Get("Upgrade"))
	}
}

type ctxKey struct{}

// TestRequestCarriesPathQueryHeadersAndMiddlewareContext mounts the endpoint
// behind a middleware that wraps the ResponseWriter and adds a context value.
func TestRequestCarriesPathQueryHeadersAndMiddlewareContext(t *testing.T) {
	wstest.CheckGoroutines(t)
	ep := wsroom.New(func(c *wsroom.Conn[chatOut], msgs iter.Seq2[chatIn, error]) error {
		r := c.Request()
		val, _ := c.Context().Value(ctxKey{}).(string)
		return c.Send(chatOut{Type: "info", Content: strings.Join([]string{
			r.PathValue("room"), r.URL.Query().Get("name"), r.Header.Get("X-Client"), val}, "|")})
	})
	mux := http.NewServeMux()
	mux.Handle("GET /rooms/{room}/ws", ep)
	middleware := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx := context.WithValue(r.Context(), ctxKey{}, "from-middleware")
			next.ServeHTTP(&wrappedWriter{ResponseWriter: w}, r.WithContext(ctx))
		})
	}
	srv := httptest.NewServer(middleware(mux))
	defer srv.Close()
	defer ep.Shutdown(context.Background())

	c := wstest.Dial(t, srv.URL+"/rooms/blue/ws?name=ann", wstest.Options{Header: http.Header{"X-Client": {"cli-7"}}})
	var out chatOut
	c.JSON(t, &out)
	if want := "blue|ann|cli-7|from-middleware"; out.Content != want {
		t.Fatalf("handler saw %q, want %q", out.Content, want)
	}
	if ev := c.Closed(t); ev.Code != 1000 {
		t.Fatalf("handler returned nil: close code %d, want 1000", ev.Code)
	}
}

// wrappedWriter is what logging middleware does to a ResponseWriter; the
// upgrade must still reach the connection through Unwrap.
type wrappedWriter struct{ http.ResponseWriter }

func (w *wrappedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

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

func TestConnIDsAreUniqueAndRemoteAddrIsThePeer(t *testing.T) {
	wstest.CheckGoroutines(t)
	_, srv := serve(t, func(c *wsroom.Conn[chatOut], msgs iter.Seq2[chatIn, error]) error {
		if err := c.Send(chatOut{Type: "id", From: c.ID(), Content: c.RemoteAddr().String()}); err != nil {
			return err
		}
		for range msgs {
		}
		return nil
	})
	seen := map[uint64]bool{}
	for range 5 {
		c := wstest.Dial(t, srv.URL+"/ws/lobby")
		var out chatOut
		c.JSON(t, &out)
		if out.From == 0 || seen[out.From] {
			t.Fatalf("id %d repeated or zero", out.From)
		}
		seen[out.From] = true
		if out.Content != c.NetConn().LocalAddr().String() {
			t.Fatalf("RemoteAddr %s, want the client's address %s", out.Content, c.NetConn().LocalAddr())
		}
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

func TestMaxConnectionsRefusesWith503AndRetryAfter(t *testing.T) {
	wstest.CheckGoroutines(t)
	ep, srv := serve(t, echo, wsroom.WithMaxConnections(2))
	wstest.Dial(t, srv.URL+"/ws/lobby")
	wstest.Dial(t, srv.URL+"/ws/lobby")
	req, _ := http.NewRequest("GET", srv.URL+"/ws/lobby", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("third upgrade: %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if got := ep.Stats().Refused; got != 1 {
		t.Fatalf("Stats.Refused = %d, want 1", got)
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
