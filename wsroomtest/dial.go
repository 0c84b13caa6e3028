package wsroomtest

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lxzan/gws"
)

// A DialOption changes how Dial connects.
type DialOption func(*dialConfig)

type dialConfig struct {
	header  http.Header
	timeout time.Duration
	buffer  int
}

// defaultBuffer is how many frames a client holds unread before its reader
// stops reading the socket, as a slow client would.
const defaultBuffer = 4096

func newDialConfig(opts []DialOption) *dialConfig {
	c := &dialConfig{header: http.Header{}, timeout: DefaultTimeout, buffer: defaultBuffer}
	for _, o := range opts {
		o(c)
	}
	return c
}

// WithHeader adds a header to the upgrade request (Origin, Cookie, ...).
func WithHeader(key, value string) DialOption {
	return func(c *dialConfig) { c.header.Add(key, value) }
}

// WithBearer sends "Authorization: Bearer token", as wsroom.RequireToken
// reads it.
func WithBearer(token string) DialOption { return WithHeader("Authorization", "Bearer "+token) }

// WithTimeout sets how long each of the client's assertions waits.
// Default DefaultTimeout.
func WithTimeout(d time.Duration) DialOption { return func(c *dialConfig) { c.timeout = d } }

// WithBuffer sets how many received frames the client holds before its
// reader stops reading the socket (a test that wants a slow consumer sets
// it low and reads nothing). Default 4096.
func WithBuffer(frames int) DialOption { return func(c *dialConfig) { c.buffer = frames } }

// Dial connects to srv at path (with its query, if any) and returns a
// client that sends Send values and receives Recv values, both as JSON.
// It fails the test if the upgrade is refused, and closes the client at
// cleanup.
func Dial[Send, Recv any](t testing.TB, srv *Server, path string, opts ...DialOption) *Conn[Send, Recv] {
	t.Helper()
	cfg := newDialConfig(opts)
	c, status, err := dial[Send, Recv](t, srv, path, cfg)
	if err != nil {
		t.Fatalf("wsroomtest: dial %s: status %d: %v", path, status, err)
	}
	t.Cleanup(c.Close)
	return c
}

// ExpectRefused dials srv at path and fails the test unless the upgrade is
// refused with the HTTP status want (401 from a guard, 403 cross-origin,
// 503 at the connection cap, ...).
func ExpectRefused(t testing.TB, srv *Server, path string, want int, opts ...DialOption) {
	t.Helper()
	c, status, err := dial[any, any](t, srv, path, newDialConfig(opts))
	if err == nil {
		c.Close()
		t.Fatalf("wsroomtest: dial %s: upgraded (101), want %d %s", path, want, http.StatusText(want))
		return
	}
	if status != want {
		t.Fatalf("wsroomtest: dial %s: status %d (%v), want %d %s", path, status, err, want, http.StatusText(want))
	}
}

// dial upgrades a connection and starts its reader, or returns the HTTP
// status of the refusal (0 if there was no answer).
func dial[Send, Recv any](t testing.TB, srv *Server, path string, cfg *dialConfig) (*Conn[Send, Recv], int, error) {
	if !strings.HasPrefix(path, "/") {
		return nil, 0, errors.New("path must start with /")
	}
	c := &Conn[Send, Recv]{t: t, path: path, timeout: cfg.timeout,
		events: make(chan event, cfg.buffer), done: make(chan struct{})}
	conn, resp, err := gws.NewClient(&reader{events: c.events}, &gws.ClientOption{
		Addr:               "ws" + strings.TrimPrefix(srv.URL, "http") + path,
		RequestHeader:      cfg.header,
		HandshakeTimeout:   cfg.timeout,
		ReadMaxPayloadSize: 64 << 20,
		CheckUtf8Enabled:   true,
	})
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		return nil, status, err
	}
	c.conn = conn
	go func() {
		defer close(c.done)
		conn.ReadLoop()
	}()
	return c, http.StatusSwitchingProtocols, nil
}
