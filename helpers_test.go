package wsroom_test

import (
	"context"
	"iter"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/wsroom/wsroom"
)

// chatIn and chatOut are the message types most tests use.
type chatIn struct {
	Type    string `json:"type" jsonschema:"enum=message,enum=typing"`
	Content string `json:"content,omitempty"`
}

type chatOut struct {
	Type    string `json:"type"`
	From    uint64 `json:"from,omitempty"`
	Content string `json:"content,omitempty"`
	Seq     int    `json:"seq,omitempty"`
}

// serve mounts an endpoint at "GET /ws/{room}" on a real server and returns
// the endpoint and the URL of the room "lobby". The server and every
// connection are shut down at cleanup.
func serve[In, Out any](t testing.TB, h wsroom.Handler[In, Out], opts ...wsroom.Option) (*wsroom.Endpoint[In, Out], *httptest.Server) {
	t.Helper()
	ep := wsroom.New(h, opts...)
	mux := http.NewServeMux()
	mux.Handle("GET /ws/{room}", ep)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10e9)
		defer cancel()
		if err := ep.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		srv.Close()
	})
	return ep, srv
}

// echo sends every message back to its sender.
func echo(c *wsroom.Conn[chatOut], msgs iter.Seq2[chatIn, error]) error {
	for msg, err := range msgs {
		if err != nil {
			return err
		}
		if err := c.Send(chatOut{Type: msg.Type, Content: msg.Content}); err != nil {
			return err
		}
	}
	return nil
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// skipIfShort skips a load or arena run that takes seconds when the tests
// run with -short, the quick local loop; CI and the README's test command
// run everything.
func skipIfShort(t testing.TB, run string) {
	t.Helper()
	if testing.Short() {
		t.Skip(run + " run, seconds long: skipped under -short")
	}
}
