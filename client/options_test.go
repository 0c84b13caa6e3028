package client_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/client"
	"github.com/wsroom/wsroom/internal/wstest"
)

// The token reaches the server's guard in the Authorization header with
// WithToken, in the token query parameter with WithQueryToken, and on
// every reconnection too.
func TestTokenByHeaderOrQuery(t *testing.T) {
	wstest.CheckGoroutines(t)
	seen := make(chan [2]string, 8) // header, query
	guard := func(r *http.Request) (*http.Request, error) {
		seen <- [2]string{r.Header.Get("Authorization"), r.URL.Query().Get("token")}
		return wsroom.RequireToken(func(ctx context.Context, tok string) (context.Context, error) {
			if tok != "secret" {
				return nil, wsroom.ErrForbidden
			}
			return ctx, nil
		})(r)
	}
	srv := newServer(t, 100, wsroom.WithGuard(guard))
	for _, tc := range []struct {
		name string
		opt  client.Option
		want [2]string
	}{
		{"header", client.WithToken("secret"), [2]string{"Bearer secret", ""}},
		{"query", client.WithQueryToken("secret"), [2]string{"", "secret"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, deadline(t), srv.url("token"), fast(tc.opt)...)
			next := messages(t, c)
			next() // joined
			if err := c.Send(In{Text: "close 1012"}); err != nil {
				t.Fatal(err)
			}
			next() // joined again: the reconnection was let in
			for i := range 2 {
				if got := <-seen; got != tc.want {
					t.Errorf("upgrade %d: header, query %q, want %q", i+1, got, tc.want)
				}
			}
		})
	}
}

// WithOrigin sends the Origin header: a foreign origin is refused by the
// endpoint's origin check, the server's own is let in.
func TestOriginIsSentAndChecked(t *testing.T) {
	wstest.CheckGoroutines(t)
	srv := newServer(t, 100)
	var ue *client.UpgradeError
	_, err := client.Dial[In, Out](deadline(t), srv.url("o"), client.WithOrigin("https://evil.example"))
	if !errors.As(err, &ue) || ue.Status != http.StatusForbidden {
		t.Fatalf("Dial from a foreign origin: %v, want 403", err)
	}
	c := dial(t, deadline(t), srv.url("o"), client.WithOrigin(srv.URL))
	if m := messages(t, c)(); m.Type != "joined" {
		t.Fatalf("from the server's origin: %+v", m)
	}
}

// A message over the read limit ends the Conn with 1009, and is not
// retried: the server would send it again. Below the limit all is well.
func TestReadLimitIsFinal(t *testing.T) {
	wstest.CheckGoroutines(t)
	srv := newServer(t, 100)
	st := newStatuses()
	c := dial(t, deadline(t), srv.url("big"), client.WithReadLimit(1000), client.WithStatus(st.add))
	next := messages(t, c)
	next() // joined
	_ = c.Send(In{Text: "big 900"})
	if m := next(); len(m.Text) != 900 {
		t.Fatalf("got %d bytes of text, want 900", len(m.Text))
	}
	_ = c.Send(In{Text: "big 2000"})
	if _, err := finalError(t, c); wsroom.CloseStatus(err) != wsroom.StatusMessageTooBig {
		t.Fatalf("the range ended with %v, want 1009", err)
	}
	if n := st.count(client.Reconnecting); n != 0 {
		t.Errorf("%d reconnections after the read limit", n)
	}
}

// A connection that goes silent (no pong to the client's pings) is
// dropped after the idle timeout and redialled, and the client recovers.
func TestSilentConnectionIsRedialled(t *testing.T) {
	wstest.CheckGoroutines(t)
	srv := newServer(t, 100)
	p := newProxy(t, srv.URL)
	st := newStatuses()
	c := dial(t, deadline(t), p.URL("/room/silent"),
		fast(client.WithHeartbeat(50*time.Millisecond, time.Second), client.WithStatus(st.add))...)
	next := messages(t, c)
	next() // joined
	p.Freeze()
	_ = srv.rooms.Room("silent").Publish(Out{Type: "msg", N: 1}) // lost on the silent path
	if m := next(); m.N != 1 {
		t.Fatalf("got %+v, want msg 1, recovered", m)
	}
	var ne net.Error
	if all := st.all(); len(all) < 3 || !errors.As(all[0].Err, &ne) || !ne.Timeout() || st.count(client.Recovered) == 0 {
		t.Fatalf("statuses %v, want a timeout, then a recovery", all)
	}
}

// A client that answers the server's pings long after its last Send
// stays connected: each write, pongs included, has its own deadline.
func TestPongsLongAfterASendKeepTheConnection(t *testing.T) {
	wstest.CheckGoroutines(t)
	srv := newServer(t, 100, wsroom.WithHeartbeat(10*time.Millisecond, 5*time.Second))
	st := newStatuses()
	c := dial(t, deadline(t), srv.url("pongs"),
		client.WithWriteTimeout(200*time.Millisecond), client.WithHeartbeat(0, 0), client.WithStatus(st.add))
	next := messages(t, c)
	next() // joined
	_ = c.Send(In{Text: "hi"})
	next() // its echo
	out := srv.ep.Stats().MessagesOut
	wstest.WaitFor(t, "60 pings, over 600 ms", func() bool { return srv.ep.Stats().MessagesOut >= out+60 })
	if err := c.Send(In{Text: "again"}); err != nil {
		t.Fatal(err)
	}
	if m := next(); m.Text != "again" {
		t.Fatalf("got %+v, want the echo of again", m)
	}
	if n := st.count(client.Reconnecting); n != 0 || srv.ep.Stats().Accepted != 1 {
		t.Errorf("%d reconnections, %d upgrades: a pong failed on a stale deadline", n, srv.ep.Stats().Accepted)
	}
}

// A server that takes the TCP connection and never answers the upgrade
// fails Dial after the dial timeout, and cancelling Dial's context stops
// a dial at once.
func TestDialTimeoutAndContextBoundTheDial(t *testing.T) {
	wstest.CheckGoroutines(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	held := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(held)
				return
			}
			held <- c // says nothing
		}
	}()
	defer func() {
		_ = ln.Close()
		for c := range held {
			_ = c.Close()
		}
	}()
	url := "ws://" + ln.Addr().String() + "/"

	start := time.Now()
	_, err = client.Dial[In, Out](deadline(t), url, client.WithDialTimeout(100*time.Millisecond))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial to a silent server: %v, want the dial timeout", err)
	}
	if took := time.Since(start); took < 100*time.Millisecond || took > wstest.Timeout {
		t.Errorf("Dial failed after %v, want the 100ms timeout", took)
	}
	_ = (<-held).Close()

	ctx, cancel := context.WithCancel(deadline(t))
	failed := make(chan error, 1)
	go func() {
		_, err := client.Dial[In, Out](ctx, url)
		failed <- err
	}()
	c := <-held // connected, waiting for the upgrade
	defer c.Close()
	cancel()
	select {
	case err := <-failed:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Dial cancelled: %v, want context.Canceled", err)
		}
	case <-time.After(wstest.Timeout):
		t.Fatal("cancelling the context did not stop the dial")
	}
}
