package wsroomtest_test

// Each assertion is tested twice over real sockets: passing when the
// server does what it says, and failing, with a message that shows what
// came instead, when it does not. A fake testing.TB records the failure.

import (
	"context"
	"fmt"
	"iter"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/wstest"
	"github.com/wsroom/wsroom/wsroomtest"
)

type msg struct {
	Text string `json:"text"`
}

// echo answers each message with itself; "close" ends the connection
// with 4000, "twice" is answered twice, "quiet" not at all.
func echo(c *wsroom.Conn[msg], msgs iter.Seq2[msg, error]) error {
	for m, err := range msgs {
		if err != nil {
			return err
		}
		switch m.Text {
		case "close":
			return &wsroom.CloseError{Code: 4000, Reason: "asked to"}
		case "quiet":
			continue
		case "twice":
			_ = c.Send(m)
		}
		if err := c.Send(m); err != nil {
			return err
		}
	}
	return nil
}

func echoServer(t *testing.T, opts ...wsroom.Option) *wsroomtest.Server {
	t.Helper()
	return wsroomtest.NewServer(t, wsroom.New(echo, opts...))
}

// fakeT records the failure of an assertion instead of failing the test;
// like testing.T, it ends the failing goroutine.
type fakeT struct {
	testing.TB
	mu      sync.Mutex
	failure string
}

func (f *fakeT) Helper() {}

func (f *fakeT) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.failure = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

// failure runs body in a goroutine of its own, as a test body, with a
// fakeT, and returns what it failed with ("" if it did not).
func failure(t *testing.T, body func(t testing.TB)) string {
	t.Helper()
	f := &fakeT{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		body(f)
	}()
	<-done
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failure
}

// wantFailure checks that body fails with a message containing each of
// parts.
func wantFailure(t *testing.T, body func(t testing.TB), parts ...string) {
	t.Helper()
	got := failure(t, body)
	if got == "" {
		t.Fatal("the assertion passed, want it to fail")
	}
	for _, p := range parts {
		if !strings.Contains(got, p) {
			t.Errorf("failure %q does not contain %q", got, p)
		}
	}
	t.Logf("failed as it should: %s", got)
}

func TestExpectPassesOnTheMessageThatArrives(t *testing.T) {
	wstest.CheckGoroutines(t)
	srv := echoServer(t)
	c := wsroomtest.Dial[msg, msg](t, srv, "/")
	c.Send(msg{Text: "hi"})
	c.Expect(msg{Text: "hi"})
	c.SendText(`{"text":"raw"}`)
	if got := c.ReceiveText(); got != `{"text":"raw"}` {
		t.Fatalf("ReceiveText = %s", got)
	}
}

func TestExpectFailsShowingTheMessageThatCameInstead(t *testing.T) {
	wstest.CheckGoroutines(t)
	srv := echoServer(t)
	wantFailure(t, func(t testing.TB) {
		c := wsroomtest.Dial[msg, msg](t, srv, "/")
		c.Send(msg{Text: "hi"})
		c.Expect(msg{Text: "bye"})
	}, `got {"text":"hi"}`, `want {"text":"bye"}`)
}

func TestExpectFailsAtItsDeadlineSayingNothingArrived(t *testing.T) {
	wstest.CheckGoroutines(t)
	srv := echoServer(t)
	start := time.Now()
	wantFailure(t, func(t testing.TB) {
		c := wsroomtest.Dial[msg, msg](t, srv, "/", wsroomtest.WithTimeout(100*time.Millisecond))
		c.Send(msg{Text: "hi"})
		c.Expect(msg{Text: "hi"})
		c.Send(msg{Text: "quiet"})
		c.Expect(msg{Text: "quiet"})
	}, "nothing arrived within 100ms", `the frame before: {"text":"hi"}`, `want {"text":"quiet"}`)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("the assertion failed after %v, want about its 100ms timeout", d)
	}
}

func TestExpectFailsWhenTheConnectionClosesFirst(t *testing.T) {
	wstest.CheckGoroutines(t)
	srv := echoServer(t)
	wantFailure(t, func(t testing.TB) {
		c := wsroomtest.Dial[msg, msg](t, srv, "/")
		c.Send(msg{Text: "close"})
		c.Expect(msg{Text: "close"})
	}, `got close 4000 "asked to"`)
}

func TestReceiveFailsOnAFrameThatDoesNotDecode(t *testing.T) {
	wstest.CheckGoroutines(t)
	srv := echoServer(t)
	wantFailure(t, func(t testing.TB) {
		c := wsroomtest.Dial[msg, int](t, srv, "/")
		c.Send(msg{Text: "hi"})
		c.Receive()
	}, `got {"text":"hi"}, which does not decode into int`)
}

func TestExpectMatchPassesOrShowsTheMessageThatFailedThePredicate(t *testing.T) {
	wstest.CheckGoroutines(t)
	srv := echoServer(t)
	c := wsroomtest.Dial[msg, msg](t, srv, "/")
	c.Send(msg{Text: "hello"})
	got := c.ExpectMatch("a greeting", func(m msg) bool { return strings.HasPrefix(m.Text, "hel") })
	if got.Text != "hello" {
		t.Fatalf("ExpectMatch returned %+v", got)
	}
	wantFailure(t, func(t testing.TB) {
		c := wsroomtest.Dial[msg, msg](t, srv, "/")
		c.Send(msg{Text: "bye"})
		c.ExpectMatch("a greeting", func(m msg) bool { return strings.HasPrefix(m.Text, "hel") })
	}, `got {"text":"bye"}, want a greeting`)
}

func TestExpectNothingPassesOnSilenceAndFailsOnAMessage(t *testing.T) {
	wstest.CheckGoroutines(t)
	srv := echoServer(t)
	c := wsroomtest.Dial[msg, msg](t, srv, "/")
	c.Send(msg{Text: "quiet"})
	c.ExpectNothing(50 * time.Millisecond)

	wantFailure(t, func(t testing.TB) {
		c := wsroomtest.Dial[msg, msg](t, srv, "/")
		c.Send(msg{Text: "twice"})
		c.Expect(msg{Text: "twice"})
		c.ExpectNothing(time.Second)
	}, `got {"text":"twice"}, want nothing for 1s`)
}

func TestExpectClosedReturnsTheReasonAndShowsAnyOtherEnding(t *testing.T) {
	wstest.CheckGoroutines(t)
	srv := echoServer(t)
	c := wsroomtest.Dial[msg, msg](t, srv, "/")
	c.Send(msg{Text: "hi"}) // its echo is passed over
	c.Send(msg{Text: "close"})
	if reason := c.ExpectClosed(4000); reason != "asked to" {
		t.Fatalf("reason %q, want %q", reason, "asked to")
	}

	wantFailure(t, func(t testing.TB) {
		c := wsroomtest.Dial[msg, msg](t, srv, "/")
		c.Send(msg{Text: "hi"})
		c.Send(msg{Text: "close"})
		c.ExpectClosed(wsroom.StatusPolicyViolation)
	}, `got close 4000 "asked to" after 1 message: [{"text":"hi"}], want close 1008`)

	wantFailure(t, func(t testing.TB) {
		c := wsroomtest.Dial[msg, msg](t, srv, "/", wsroomtest.WithTimeout(100*time.Millisecond))
		c.Send(msg{Text: "hi"})
		c.ExpectClosed(1000)
	}, `not closed within 100ms after 1 message: [{"text":"hi"}], want close 1000`)
}

func TestExpectRefusedChecksTheStatusOfTheRefusal(t *testing.T) {
	wstest.CheckGoroutines(t)
	verify := func(ctx context.Context, token string) (context.Context, error) {
		if token != "s3cret" {
			return nil, wsroom.ErrUnauthorized
		}
		return ctx, nil
	}
	srv := echoServer(t, wsroom.WithGuard(wsroom.RequireToken(verify)))
	wsroomtest.ExpectRefused(t, srv, "/", http.StatusUnauthorized)
	wsroomtest.ExpectRefused(t, srv, "/", http.StatusForbidden, wsroomtest.WithHeader("Origin", "http://evil.example"))
	c := wsroomtest.Dial[msg, msg](t, srv, "/", wsroomtest.WithBearer("s3cret"))
	c.Send(msg{Text: "in"})
	c.Expect(msg{Text: "in"})
	wsroomtest.Dial[msg, msg](t, srv, "/?token=s3cret")

	wantFailure(t, func(t testing.TB) {
		wsroomtest.ExpectRefused(t, srv, "/?token=s3cret", http.StatusUnauthorized)
	}, "upgraded (101), want 401")
	wantFailure(t, func(t testing.TB) {
		wsroomtest.ExpectRefused(t, srv, "/", http.StatusForbidden)
	}, "status 401", "want 403")
	wantFailure(t, func(t testing.TB) {
		wsroomtest.Dial[msg, msg](t, srv, "/")
	}, "dial /: status 401")
}

func TestDropEndsTheConnectionWithoutACloseFrame(t *testing.T) {
	wstest.CheckGoroutines(t)
	ended := make(chan error, 1)
	ep := wsroom.New(func(c *wsroom.Conn[msg], msgs iter.Seq2[msg, error]) error {
		for _, err := range msgs {
			if err != nil {
				ended <- err
				return err
			}
		}
		ended <- nil
		return nil
	})
	srv := wsroomtest.NewServer(t, ep)
	c := wsroomtest.Dial[msg, msg](t, srv, "/")
	c.Drop()
	select {
	case err := <-ended:
		if err == nil {
			t.Fatal("the handler's stream ended cleanly, want an abnormal end")
		}
	case <-time.After(wsroomtest.DefaultTimeout):
		t.Fatal("the handler did not see the drop")
	}
}

func TestServerShutsDownTheEndpointsMountedOnAMux(t *testing.T) {
	wstest.CheckGoroutines(t)
	ep := wsroom.New(echo)
	t.Run("inner", func(t *testing.T) {
		mux := http.NewServeMux()
		mux.Handle("GET /echo", ep)
		srv := wsroomtest.NewServer(t, mux, ep)
		c := wsroomtest.Dial[msg, msg](t, srv, "/echo")
		c.Send(msg{Text: "hi"})
		c.Expect(msg{Text: "hi"})
	})
	if n := ep.Stats().Connections; n != 0 {
		t.Fatalf("%d connections open after the test's cleanup", n)
	}
	// Shut down: it refuses new upgrades.
	wsroomtest.ExpectRefused(t, wsroomtest.NewServer(t, ep), "/echo", http.StatusServiceUnavailable)
}
