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

	"github.com/invopop/jsonschema"
	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/wstest"
)

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

// TestRequireTokenLeavesOtherQueryParametersAlone: every token parameter
// is removed from the query the handler sees, and nothing else.
func TestRequireTokenLeavesOtherQueryParametersAlone(t *testing.T) {
	wstest.CheckGoroutines(t)
	verify := func(ctx context.Context, got string) (context.Context, error) {
		if subtle.ConstantTimeCompare([]byte(got), []byte("t0k")) != 1 {
			return nil, errors.New("bad token")
		}
		return ctx, nil
	}
	queries := make(chan string, 2)
	_, srv := serve(t, func(c *wsroom.Conn[chatOut], msgs iter.Seq2[chatIn, error]) error {
		queries <- c.Request().URL.RawQuery
		return nil
	}, wsroom.WithGuard(wsroom.RequireToken(verify)))
	c := wstest.Dial(t, srv.URL+"/ws/lobby?a=1&token=t0k&token=again&b=2")
	c.Closed(t)
	if q := <-queries; q != "a=1&b=2" {
		t.Fatalf("handler saw query %q, want every token parameter removed and the rest kept", q)
	}
}

// guardedIn has optional fields whose values the schema restricts.
type guardedIn struct {
	Type    string        `json:"type" jsonschema:"enum=message,enum=chat"`
	Content string        `json:"content,omitempty" jsonschema:"maxLength=16"`
	Items   []guardedItem `json:"items,omitempty"`
	Opts    *guardedOpts  `json:"opts,omitempty"`
}

type guardedItem struct {
	Name string `json:"name"`
	Kind string `json:"kind,omitempty" jsonschema:"enum=a,enum=b"`
}

type guardedOpts struct {
	Level string `json:"level,omitempty" jsonschema:"enum=low,enum=high"`
}

// violation says which constraint of guardedIn's schema m breaks, if any.
func (m guardedIn) violation() string {
	switch {
	case m.Type != "message" && m.Type != "chat":
		return "type " + m.Type
	case len([]rune(m.Content)) > 16:
		return "content longer than 16"
	case m.Opts != nil && m.Opts.Level != "" && m.Opts.Level != "low" && m.Opts.Level != "high":
		return "opts.level " + m.Opts.Level
	}
	for _, it := range m.Items {
		if it.Kind != "" && it.Kind != "a" && it.Kind != "b" {
			return "items[].kind " + it.Kind
		}
	}
	return ""
}

// TestSchemaCannotBeBypassedByDuplicateOrCaseVariantKeys: the value the
// handler receives must satisfy the schema, not only the bytes that were
// validated. encoding/json, which fills the Go value, matches keys without
// regard to case and merges a repeated key into what an earlier one
// decoded; the validator takes the last of repeated keys and matches case.
// A message that plays on the difference must be rejected, under the
// default reflector and under AllowAdditionalProperties (which the README
// suggests for accepting unknown fields).
func TestSchemaCannotBeBypassedByDuplicateOrCaseVariantKeys(t *testing.T) {
	wstest.CheckGoroutines(t)
	long := strings.Repeat("x", 40)
	inputs := []struct{ name, msg string }{
		{"repeated array merges into the first's elements", `{"type":"chat","items":[{"name":"n","kind":"admin"}],"items":[{"name":"n"}]}`},
		{"repeated object merges into the first", `{"type":"chat","opts":{"level":"root"},"opts":{}}`},
		{"case variant of a field", `{"type":"chat","TYPE":"admin"}`},
		{"case variant after the field", `{"type":"chat","Content":"` + long + `"}`},
		{"Unicode case folding (Kelvin sign, U+212A)", `{"type":"chat","items":[{"name":"n","kind":"a","\u212aind":"admin"}]}`},
	}
	for _, mode := range []struct {
		name string
		opts []wsroom.Option
	}{
		{"default reflector", nil},
		{"AllowAdditionalProperties", []wsroom.Option{wsroom.WithReflector(&jsonschema.Reflector{AllowAdditionalProperties: true})}},
	} {
		seen := make(chan guardedIn, 1)
		_, srv := serve(t, func(c *wsroom.Conn[chatOut], msgs iter.Seq2[guardedIn, error]) error {
			for m, err := range msgs {
				if err != nil {
					return err
				}
				seen <- m
				_ = c.Send(chatOut{Type: "accepted"})
			}
			return nil
		}, mode.opts...)
		c := wstest.Dial(t, srv.URL+"/ws/lobby")
		for _, in := range inputs {
			c.SendText(t, in.msg)
			var out chatOut
			c.JSON(t, &out)
			if out.Type != "accepted" {
				continue // rejected: fine
			}
			if v := (<-seen).violation(); v != "" {
				t.Errorf("%s, %s: the handler received a value the schema forbids (%s) from %s", mode.name, in.name, v, in.msg)
			}
		}
		c.Close()
	}
}
