package client_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"testing"
	"time"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/client"
	"github.com/wsroom/wsroom/internal/wstest"
	"github.com/wsroom/wsroom/wsroomtest"
)

// Closes that say the server is going or failed this once are retried,
// and the client recovers; closes that say the server meant it end the
// range with the close, and nothing is retried.
func TestServerClosesAreRetriedOrFinalByCode(t *testing.T) {
	for _, tc := range []struct {
		code  wsroom.StatusCode
		retry bool
	}{
		{1001, true}, {1011, true}, {1012, true}, {1013, true},
		{1000, false}, {1003, false}, {1008, false}, {4000, false},
	} {
		t.Run(fmt.Sprint(tc.code), func(t *testing.T) {
			wstest.CheckGoroutines(t)
			srv := newServer(t, 100)
			st := newStatuses()
			c := dial(t, deadline(t), srv.url("codes"), fast(client.WithStatus(st.add))...)
			next := messages(t, c)
			if m := next(); m.Type != "joined" {
				t.Fatalf("first %+v", m)
			}
			if err := c.Send(In{Text: fmt.Sprint("close ", tc.code)}); err != nil {
				t.Fatal(err)
			}
			if tc.retry {
				if m := next(); m.Type != "joined" || m.Seq != 2 {
					t.Fatalf("after the close %+v, want our joined again, seq 2", m)
				}
				if st.count(client.Recovered) != 1 {
					t.Errorf("statuses %v, want a recovery", st.all())
				}
				return
			}
			_, err := finalError(t, c)
			if got := wsroom.CloseStatus(err); got != tc.code {
				t.Fatalf("the range ended with %v, want the close %d", err, tc.code)
			}
			if n := st.count(client.Reconnecting); n != 0 {
				t.Errorf("%d reconnections after a final close", n)
			}
			if got := srv.ep.Stats().Accepted; got != 1 {
				t.Errorf("%d connections accepted, want 1", got)
			}
		})
	}
}

// finalError ranges over c's remaining messages and returns the error the
// range ended with, and how many messages came before it.
func finalError(t *testing.T, c *client.Conn[In, Out]) (int, error) {
	t.Helper()
	n := 0
	for _, err := range c.Messages() {
		if err != nil {
			var inv *client.InvalidMessageError
			if errors.As(err, &inv) {
				t.Fatalf("invalid message: %v", err)
			}
			return n, err
		}
		n++
	}
	t.Fatal("the range ended without an error")
	return n, nil
}

// A refused upgrade is final: at Dial, and when a reconnection is
// refused because the token was revoked meanwhile.
func TestAuthRefusalIsFinal(t *testing.T) {
	wstest.CheckGoroutines(t)
	valid := make(chan string, 1)
	valid <- "secret"
	verify := func(ctx context.Context, token string) (context.Context, error) {
		v := <-valid
		valid <- v
		if token != v {
			return nil, wsroom.ErrForbidden
		}
		return ctx, nil
	}
	srv := newServer(t, 100, wsroom.WithGuard(wsroom.RequireToken(verify)))
	p := newProxy(t, srv.URL)

	var ue *client.UpgradeError
	_, err := client.Dial[In, Out](deadline(t), p.URL("/room/auth"))
	if !errors.As(err, &ue) || ue.Status != 401 {
		t.Fatalf("Dial without a token: %v, want a 401 UpgradeError", err)
	}
	_, err = client.Dial[In, Out](deadline(t), p.URL("/room/auth"), client.WithToken("wrong"))
	if !errors.As(err, &ue) || ue.Status != 403 {
		t.Fatalf("Dial with a wrong token: %v, want a 403 UpgradeError", err)
	}

	st := newStatuses()
	c := dial(t, deadline(t), p.URL("/room/auth"), fast(client.WithToken("secret"), client.WithStatus(st.add))...)
	if m := messages(t, c)(); m.Type != "joined" {
		t.Fatalf("first %+v", m)
	}
	<-valid
	valid <- "rotated"
	p.Cut()
	if _, err := finalError(t, c); !errors.As(err, &ue) || ue.Status != 403 {
		t.Fatalf("the range ended with %v, want the 403 of the reconnection", err)
	}
	if n := st.count(client.Reconnecting); n != 1 {
		t.Errorf("%d attempts, want 1: a refusal is not retried (%v)", n, st.all())
	}
	if err := c.Send(In{Text: "x"}); !errors.Is(err, client.ErrClosed) {
		t.Errorf("Send after the end: %v, want ErrClosed", err)
	}
}

// Cancelling Dial's context ends the range with the context's error, while
// connected and while reconnecting, and leaves no goroutine behind; Close
// ends it without an error.
func TestContextAndCloseEndTheRange(t *testing.T) {
	for _, tc := range []struct {
		name         string
		reconnecting bool
		close        bool
	}{
		{"cancel while connected", false, false},
		{"cancel while reconnecting", true, false},
		{"Close while connected", false, true},
		{"Close while reconnecting", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wstest.CheckGoroutines(t)
			srv := newServer(t, 100)
			p := newProxy(t, srv.URL)
			ctx, cancel := context.WithCancel(deadline(t))
			st := newStatuses()
			c := dial(t, ctx, p.URL("/room/end"), fast(client.WithStatus(st.add))...)
			joined := make(chan struct{})
			got := make(chan []error, 1) // the range's errors, nil for a message
			go func() {
				var all []error
				for m, err := range c.Messages() {
					if m.Type == "joined" {
						close(joined)
					}
					all = append(all, err)
				}
				got <- all
			}()
			select {
			case <-joined:
			case <-time.After(wstest.Timeout):
				t.Fatal("no joined")
			}
			if tc.reconnecting {
				p.Down()
				wstest.WaitFor(t, "a failed reconnection", func() bool { return st.count(client.Reconnecting) >= 2 })
			}
			if tc.close {
				_ = c.Close()
			} else {
				cancel()
			}
			select {
			case all := <-got:
				if tc.close && fmt.Sprint(all) != "[<nil>]" {
					t.Errorf("the range yielded %v, want joined alone: after Close it ends without an error", all)
				}
				if !tc.close && (len(all) != 2 || all[0] != nil || !errors.Is(all[1], context.Canceled)) {
					t.Errorf("the range yielded %v, want joined, then context.Canceled", all)
				}
			case <-time.After(wstest.Timeout):
				t.Fatal("the range did not end")
			}
			cancel()
			if err := c.Send(In{Text: "x"}); !errors.Is(err, client.ErrClosed) {
				t.Errorf("Send after the end: %v, want ErrClosed", err)
			}
		})
	}
}

// While the server is unreachable, each attempt waits a jittered delay
// within its exponential bound and the largest delay, and WithMaxAttempts
// ends the Conn after that many failed attempts in a row.
func TestBackoffIsBoundedAndAttemptsEnd(t *testing.T) {
	wstest.CheckGoroutines(t)
	srv := newServer(t, 100)
	p := newProxy(t, srv.URL)
	st := newStatuses()
	const lo, hi, attempts = 2 * time.Millisecond, 16 * time.Millisecond, 8
	c := dial(t, deadline(t), p.URL("/room/backoff"),
		client.WithBackoff(lo, hi), client.WithMaxAttempts(attempts), client.WithStatus(st.add))
	p.Down()
	start := time.Now()
	_, err := finalError(t, c)
	var gaveUp *client.GaveUpError
	if !errors.As(err, &gaveUp) || gaveUp.Attempts != attempts {
		t.Fatalf("the range ended with %v, want a GaveUpError after %d attempts", err, attempts)
	}
	all := st.all()
	if len(all) != attempts {
		t.Fatalf("statuses %v, want %d reconnecting", all, attempts)
	}
	var sum time.Duration
	for i, s := range all {
		bound := min(hi, lo<<i)
		if s.Kind != client.Reconnecting || s.Attempt != i+1 || s.Delay < 0 || s.Delay > bound {
			t.Errorf("status %d: %+v, want attempt %d after at most %v", i, s, i+1, bound)
		}
		sum += s.Delay
	}
	if took := time.Since(start); took < sum {
		t.Errorf("gave up after %v, before the %v of delays", took, sum)
	}
	if err := c.Send(In{Text: "x"}); !errors.Is(err, client.ErrClosed) {
		t.Errorf("Send after giving up: %v, want ErrClosed", err)
	}
}

// Send fails fast while the Conn reconnects, with an error that says so,
// and works again once it is back.
func TestSendWhileReconnectingFailsFast(t *testing.T) {
	wstest.CheckGoroutines(t)
	srv := newServer(t, 100)
	p := newProxy(t, srv.URL)
	c := dial(t, deadline(t), p.URL("/room/send"), fast()...)
	next := messages(t, c)
	next() // joined
	p.Down()
	// Nobody ranges meanwhile: the Conn reconnects all the same.
	var err error
	wstest.WaitFor(t, "Send to fail", func() bool { err = c.Send(In{Text: "lost"}); return err != nil })
	if !errors.Is(err, client.ErrReconnecting) {
		t.Fatalf("Send while reconnecting: %v, want ErrReconnecting", err)
	}
	p.Up()
	if m := next(); m.Type != "joined" {
		t.Fatalf("after the reconnection %+v, want joined", m)
	}
	if err := c.Send(In{Text: "back"}); err != nil {
		t.Fatal(err)
	}
	if m := next(); m.Type != "echo" || m.Text != "back" {
		t.Fatalf("got %+v, want the echo of back", m)
	}
}

// A 503 at the connection cap is retried, after the Retry-After the
// server asks for, up to the largest delay; the client gets in once a
// place is free.
func TestServiceUnavailableIsRetriedAfterRetryAfter(t *testing.T) {
	wstest.CheckGoroutines(t)
	srv := newServer(t, 100, wsroom.WithMaxConnections(1))
	p := newProxy(t, srv.URL)
	st := newStatuses()
	const hi = 50 * time.Millisecond
	c := dial(t, deadline(t), p.URL("/room/cap"), client.WithBackoff(time.Millisecond, hi), client.WithStatus(st.add))
	next := messages(t, c)
	next() // joined
	p.Down()
	wstest.WaitFor(t, "the place to be free", func() bool { return srv.ep.Stats().Connections == 0 })
	holder := wstest.Dial(t, srv.URL+"/room/cap")
	p.Up()
	wstest.WaitFor(t, "a refusal", func() bool { return srv.ep.Stats().Refused > 0 })
	holder.Close()
	if m := next(); m.Type != "joined" {
		t.Fatalf("once in: %+v", m)
	}
	var ue *client.UpgradeError
	refused := 0
	for _, s := range st.all() {
		if s.Kind == client.Reconnecting && errors.As(s.Err, &ue) {
			refused++
			if ue.Status != 503 || ue.RetryAfter != 5*time.Second || s.Delay != hi {
				t.Errorf("after %v (Retry-After %v): delay %v, want %v, Retry-After capped by the largest delay", ue, ue.RetryAfter, s.Delay, hi)
			}
		}
	}
	if refused == 0 {
		t.Errorf("no attempt after a 503 in %v", st.all())
	}
}

// A server that closes every connection as soon as it opens is retried
// ever more slowly: a connection that did not stay up for the largest
// delay does not start the backoff again.
func TestConnectionsClosedAtOnceAreRetriedEverMoreSlowly(t *testing.T) {
	wstest.CheckGoroutines(t)
	ep := wsroom.New(func(c *wsroom.Conn[Out], msgs iter.Seq2[In, error]) error {
		return &wsroom.CloseError{Code: wsroom.StatusInternalError, Reason: "broken"}
	})
	srv := wsroomtest.NewServer(t, ep)
	st := newStatuses()
	const lo, hi, reconnects = time.Millisecond, time.Second, 10
	var c *client.Conn[In, Out]
	c = dial(t, deadline(t), srv.URL, client.WithBackoff(lo, hi), client.WithStatus(func(s client.Status) {
		st.add(s)
		if st.count(client.Reconnecting) == reconnects {
			_ = c.Close() // from the callback: the range ends
		}
	}))
	for _, err := range c.Messages() {
		t.Fatalf("the server sends nothing, the range yielded %v", err)
	}
	level, slow := 0, 0
	for _, s := range st.all() {
		if s.Kind != client.Reconnecting {
			continue
		}
		level++
		if s.Attempt != 1 {
			t.Errorf("%+v: each reconnection succeeds at its first attempt", s)
		}
		if s.Delay > min(hi, lo<<(level-1)) {
			t.Errorf("reconnection %d: delay %v over its bound", level, s.Delay)
		} else if level > reconnects-3 && s.Delay > lo {
			slow++
		}
	}
	if slow == 0 {
		t.Errorf("the last reconnections all waited at most %v: the backoff started again each time (%v)", lo, st.all())
	}
}
