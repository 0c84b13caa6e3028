package wsroom_test

import (
	"context"
	"errors"
	"iter"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/wstest"
)

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

func TestCrossOriginUpgradeIsRefusedWith403(t *testing.T) {
	wstest.CheckGoroutines(t)
	_, srv := serve(t, echo, wsroom.WithOriginPatterns("*.friendly.example"))
	host := strings.TrimPrefix(srv.URL, "http://")
	cases := []struct {
		origin string
		status int
	}{
		{"", http.StatusSwitchingProtocols},
		{"http://" + host, http.StatusSwitchingProtocols},
		{"https://app.friendly.example", http.StatusSwitchingProtocols},
		{"https://evil.example", http.StatusForbidden},
		{"https://friendly.example.evil.example", http.StatusForbidden},
		{"null", http.StatusForbidden},
	}
	for _, tc := range cases {
		h := http.Header{}
		if tc.origin != "" {
			h.Set("Origin", tc.origin)
		}
		c, status, _ := wstest.TryDial(srv.URL+"/ws/lobby", wstest.Options{Header: h})
		if status != tc.status {
			t.Errorf("Origin %q: status %d, want %d", tc.origin, status, tc.status)
		}
		if c != nil {
			c.Close()
		}
	}
}

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
}

func TestServerPingsAndDropsPeerSilentPastIdleTimeout(t *testing.T) {
	wstest.CheckGoroutines(t)
	// 20 ms between pings, 1 s of silence allowed: the live peer's pongs
	// have a second to arrive even on a stalled machine.
	ep, srv := serve(t, echo, wsroom.WithHeartbeat(20*time.Millisecond, time.Second))
	alive := wstest.Dial(t, srv.URL+"/ws/lobby")
	silent := wstest.Dial(t, srv.URL+"/ws/lobby", wstest.Options{Silent: true})
	if ev := silent.Closed(t); ev.Code != 1001 || ev.Reason != "idle timeout" {
		t.Fatalf("silent peer: close %d %q, want 1001 idle timeout", ev.Code, ev.Reason)
	}
	// The live peer answers pings: after 75 of them (past the idle timeout
	// again since the silent peer was dropped) it is still served.
	wstest.WaitFor(t, "75 pings", func() bool { return alive.Pings.Load() >= 75 })
	alive.Send(t, chatIn{Type: "message", Content: "still here"})
	var out chatOut
	alive.JSON(t, &out)
	if out.Content != "still here" {
		t.Fatalf("live peer: got %+v", out)
	}
	wstest.WaitFor(t, "only the live peer connected", func() bool { return ep.Stats().Connections == 1 })
}

func TestFloodPastTheRateLimitClosesWith1008UnderRateClose(t *testing.T) {
	wstest.CheckGoroutines(t)
	ep, srv := serve(t, echo, wsroom.WithRateLimit(50, 20), wsroom.WithRatePolicy(wsroom.RateClose))
	flooder := wstest.Dial(t, srv.URL+"/ws/lobby")
	calm := wstest.Dial(t, srv.URL+"/ws/lobby")
	msg := wstest.Frame(true, 1, []byte(`{"type":"typing"}`))
	var burst []byte
	for range 200 {
		burst = append(burst, msg...)
	}
	if _, err := flooder.NetConn().Write(burst); err != nil {
		t.Fatal(err)
	}
	if ev := flooder.Closed(t); ev.Code != 1008 || ev.Reason != "rate limit exceeded" {
		t.Fatalf("flooder: close %d %q, want 1008 rate limit exceeded", ev.Code, ev.Reason)
	}
	if got := ep.Stats().RateLimited; got != 1 {
		t.Fatalf("RateLimited = %d, want 1", got)
	}
	// A client within the limit is served: 20 at once is the burst.
	for range 20 {
		calm.Send(t, chatIn{Type: "typing"})
	}
	for range 20 {
		calm.Message(t)
	}
}
