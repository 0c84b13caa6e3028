package wsroom_test

import (
	"context"
	"iter"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/wstest"
)

// What a Conn (conn.go) tells its handler: the request it came with, its
// id and its peer.

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

// wrappedWriter is what logging middleware does to a ResponseWriter; the
// upgrade must still reach the connection through Unwrap.
type wrappedWriter struct{ http.ResponseWriter }

func (w *wrappedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
