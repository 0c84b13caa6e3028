package wsroom_test

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"io"
	"iter"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/wstest"
)

// Guards (guard.go): a Guard runs before the upgrade; RequireToken takes
// the token from the header or the query and keeps it out of the
// handler's request and the logs.

type principalKey struct{}

func TestGuardRunsBeforeUpgradeAndAttachesPrincipal(t *testing.T) {
	wstest.CheckGoroutines(t)
	guard := func(r *http.Request) (*http.Request, error) {
		switch r.Header.Get("X-User") {
		case "":
			return nil, errors.New("who are you")
		case "mallory":
			return nil, wsroom.ErrForbidden
		}
		return r.WithContext(context.WithValue(r.Context(), principalKey{}, r.Header.Get("X-User"))), nil
	}
	_, srv := serve(t, func(c *wsroom.Conn[chatOut], msgs iter.Seq2[chatIn, error]) error {
		user, _ := c.Context().Value(principalKey{}).(string)
		return c.Send(chatOut{Type: "hello", Content: user})
	}, wsroom.WithGuard(guard))
	for user, status := range map[string]int{"": 401, "mallory": 403} {
		_, got, _ := wstest.TryDial(srv.URL+"/ws/lobby", wstest.Options{Header: http.Header{"X-User": {user}}})
		if got != status {
			t.Errorf("user %q: status %d, want %d", user, got, status)
		}
	}
	c := wstest.Dial(t, srv.URL+"/ws/lobby", wstest.Options{Header: http.Header{"X-User": {"alice"}}})
	var out chatOut
	c.JSON(t, &out)
	if out.Content != "alice" {
		t.Fatalf("handler saw principal %q, want alice", out.Content)
	}
}

// TestRequireTokenAcceptsBearerHeaderOrQueryAndHidesQueryToken: a token in
// "Authorization: Bearer" (any case) or in the query is verified; anything
// else is refused with 401. The handler's query keeps every parameter but
// the token ones.
func TestRequireTokenAcceptsBearerHeaderOrQueryAndHidesQueryToken(t *testing.T) {
	wstest.CheckGoroutines(t)
	verify := func(ctx context.Context, token string) (context.Context, error) {
		if token != "s3cret" {
			return nil, errors.New("bad token")
		}
		return context.WithValue(ctx, principalKey{}, "token-user"), nil
	}
	_, srv := serve(t, func(c *wsroom.Conn[chatOut], msgs iter.Seq2[chatIn, error]) error {
		user, _ := c.Context().Value(principalKey{}).(string)
		return c.Send(chatOut{Type: user, Content: c.Request().URL.RawQuery})
	}, wsroom.WithGuard(wsroom.RequireToken(verify)))
	url := srv.URL + "/ws/lobby"
	refused := []struct {
		url    string
		header http.Header
	}{
		{url, nil},
		{url + "?token=wrong", nil},
		{url, http.Header{"Authorization": {"Bearer wrong"}}},
		{url, http.Header{"Authorization": {"Basic czNjcmV0"}}},
	}
	for _, tc := range refused {
		_, status, _ := wstest.TryDial(tc.url, wstest.Options{Header: tc.header})
		if status != http.StatusUnauthorized {
			t.Errorf("%s %v: status %d, want 401", tc.url, tc.header, status)
		}
	}
	h := wstest.Dial(t, url+"?name=x", wstest.Options{Header: http.Header{"Authorization": {"bearer s3cret"}}})
	var out chatOut
	h.JSON(t, &out)
	if out.Type != "token-user" || out.Content != "name=x" {
		t.Fatalf("header token: handler saw %+v", out)
	}
	q := wstest.Dial(t, url+"?name=y&token=s3cret")
	q.JSON(t, &out)
	if out.Type != "token-user" || out.Content != "name=y" {
		t.Fatalf("query token: handler saw %+v, want the token removed from the URL", out)
	}
	// The first token parameter is the one verified; every one is removed
	// from the query the handler sees, and nothing else.
	many := wstest.Dial(t, url+"?a=1&token=s3cret&token=again&b=2")
	many.JSON(t, &out)
	if out.Type != "token-user" || out.Content != "a=1&b=2" {
		t.Fatalf("two token parameters: handler saw %+v, want query %q: every token parameter removed and the rest kept", out, "a=1&b=2")
	}
}

// TestTokenNeverReachesLogsOrTheHandler drives every path that logs (guard
// refusal, origin refusal, failed handshake, handler error, handler panic,
// all at debug level) with a token in the query, and checks that the token
// appears in no log line, and that the request the handler sees carries it
// nowhere: not in its URL, not in its request URI.
func TestTokenNeverReachesLogsOrTheHandler(t *testing.T) {
	wstest.CheckGoroutines(t)
	const token = "s3cret-TOKEN-7f9c"
	logs := new(lockedBuffer)
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	verify := func(ctx context.Context, got string) (context.Context, error) {
		if subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			return nil, errors.New("bad token")
		}
		return ctx, nil
	}
	views := make(chan map[string]string, 4)
	ep, srv := serve(t, func(c *wsroom.Conn[chatOut], msgs iter.Seq2[chatIn, error]) error {
		r := c.Request()
		switch r.URL.Query().Get("mode") {
		case "fail":
			return errors.New("handler failed on purpose")
		case "panic":
			panic("handler panicked on purpose")
		}
		views <- map[string]string{
			"URL.String()": r.URL.String(),
			"URL.RawQuery": r.URL.RawQuery,
			"RequestURI":   r.RequestURI,
			"Referer":      r.Referer(),
		}
		return nil
	}, wsroom.WithGuard(wsroom.RequireToken(verify)), wsroom.WithLogger(logger))

	base := srv.URL + "/ws/lobby"
	for _, mode := range []string{"echo", "fail", "panic"} {
		c := wstest.Dial(t, base+"?mode="+mode+"&token="+token)
		c.Closed(t)
	}
	if _, status, _ := wstest.TryDial(base + "?token=" + token + "x"); status != http.StatusUnauthorized {
		t.Fatalf("wrong token: status %d, want 401", status)
	}
	h := http.Header{"Origin": {"https://evil.example"}}
	if _, status, _ := wstest.TryDial(base+"?token="+token, wstest.Options{Header: h}); status != http.StatusForbidden {
		t.Fatalf("cross-origin: status %d, want 403", status)
	}
	// A handshake that fails inside gws (no Sec-WebSocket-Key).
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(conn, "GET /ws/lobby?token="+token+" HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n")
	_, _ = io.Copy(io.Discard, conn)
	conn.Close()

	view := <-views
	for what, v := range view {
		if strings.Contains(v, token) {
			t.Errorf("the handler's request carries the token in %s: %q", what, v)
		}
	}
	wstest.WaitFor(t, "connections closed", func() bool { return ep.Stats().Connections == 0 })
	out := logs.String()
	for _, want := range []string{"guard refused", "upgrade refused", "handshake failed", "handler failed", "handler panicked"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q line in the logs: the path was not exercised", want)
		}
	}
	if strings.Contains(out, token) {
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, token) {
				t.Errorf("the token is in a log line: %.300s", line)
			}
		}
	}
	t.Logf("security: %d log lines from the 5 paths that log, none with the token; the handler saw no token in URL or RequestURI", strings.Count(out, "\n"))
}

// lockedBuffer is a log destination safe for concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
