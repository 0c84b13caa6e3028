package wsroomtest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// DefaultTimeout bounds each assertion of a client dialled without
// WithTimeout, and the shutdown of a Server's endpoints at cleanup.
const DefaultTimeout = 5 * time.Second

// A Shutdowner is what a Server shuts down at cleanup: a *wsroom.Endpoint.
type Shutdowner interface {
	Shutdown(ctx context.Context) error
}

// Server is a handler served on a loopback port of this machine.
type Server struct {
	// URL is the server's base URL, http://127.0.0.1:PORT.
	URL string
	srv *httptest.Server
}

// NewServer serves h on a real loopback socket until the test ends. At
// cleanup, after the test's later cleanups (its clients' closes among
// them), it shuts down h if h is a Shutdowner and every endpoint given,
// failing the test if one does not finish within DefaultTimeout, then
// closes the server. Pass the endpoints mounted on a mux, so that none of
// their connections outlives the test:
//
//	srv := wsroomtest.NewServer(t, mux, chat, admin)
func NewServer(t testing.TB, h http.Handler, endpoints ...Shutdowner) *Server {
	t.Helper()
	if s, ok := h.(Shutdowner); ok {
		endpoints = append(endpoints, s)
	}
	hs := httptest.NewServer(h)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
		defer cancel()
		for _, ep := range endpoints {
			if err := ep.Shutdown(ctx); err != nil {
				t.Errorf("wsroomtest: shutdown of %T: %v", ep, err)
			}
		}
		hs.Close()
	})
	return &Server{URL: hs.URL, srv: hs}
}

// Client returns an HTTP client for plain requests to the server.
func (s *Server) Client() *http.Client { return s.srv.Client() }
