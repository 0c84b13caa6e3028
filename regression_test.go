package wsroom_test

import (
	"bytes"
	"context"
	"errors"
	"iter"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/wstest"
)

// endRecorder collects how a handler's stream ended and when.
type endRecorder struct {
	err error
	at  time.Time
}

// TestWriteTimeoutEndsStreamWithSlowConsumerError: a client that accepts no
// bytes for the write timeout is a slow consumer; the handler learns it from
// its stream, at once, not from a quiet end.
func TestWriteTimeoutEndsStreamWithSlowConsumerError(t *testing.T) {
	wstest.CheckGoroutines(t)
	ends := make(chan endRecorder, 1)
	cancelled := make(chan time.Time, 1)
	ep, srv := serve(t, func(c *wsroom.Conn[chatOut], msgs iter.Seq2[chatIn, error]) error {
		go func() {
			<-c.Context().Done()
			cancelled <- time.Now()
		}()
		go func() {
			payload := strings.Repeat("w", 64<<10)
			for c.Send(chatOut{Type: "bulk", Content: payload}) != wsroom.ErrClosed {
			}
		}()
		var last error
		for _, err := range msgs {
			last = err
		}
		ends <- endRecorder{last, time.Now()}
		return last
	}, wsroom.WithOverflow(wsroom.OverflowDrop), wsroom.WithWriteTimeout(300*time.Millisecond))
	wstest.Dial(t, srv.URL+"/ws/lobby", wstest.Options{Paused: true})
	var end endRecorder
	select {
	case end = <-ends:
	case <-time.After(wstest.Timeout):
		t.Fatal("stream did not end for a client that stopped reading")
	}
	if ce := wsroom.CloseStatus(end.err); ce != wsroom.StatusPolicyViolation {
		t.Fatalf("stream ended with %v, want a 1008 CloseError", end.err)
	}
	if lag := end.at.Sub(<-cancelled); lag > time.Second {
		t.Fatalf("stream ended %v after the connection closed, want at once", lag)
	}
	if got := ep.Stats().SlowConsumerCloses; got != 1 {
		t.Fatalf("SlowConsumerCloses = %d, want 1", got)
	}
}

// TestNoMessageIsYieldedAfterClose sends three messages in one TCP write, so
// all three sit in the read buffer when the handler closes on the first.
func TestNoMessageIsYieldedAfterClose(t *testing.T) {
	wstest.CheckGoroutines(t)
	yields := make(chan int, 1)
	_, srv := serve(t, func(c *wsroom.Conn[chatOut], msgs iter.Seq2[chatIn, error]) error {
		n := 0
		for _, err := range msgs {
			if err != nil {
				t.Errorf("stream yielded %v after Close, want a quiet end", err)
				continue
			}
			n++
			_ = c.Close(4000, "enough")
		}
		yields <- n
		return nil
	})
	c := wstest.Dial(t, srv.URL+"/ws/lobby")
	msg := []byte(`{"type":"message"}`)
	three := bytes.Join([][]byte{wstest.Frame(true, 1, msg), wstest.Frame(true, 1, msg), wstest.Frame(true, 1, msg)}, nil)
	if _, err := c.NetConn().Write(three); err != nil {
		t.Fatal(err)
	}
	if n := <-yields; n != 1 {
		t.Fatalf("handler got %d messages, want 1: nothing after Close", n)
	}
	if ev := c.Closed(t); ev.Code != 4000 {
		t.Fatalf("close %d, want 4000", ev.Code)
	}
}

// TestIdleTimeoutStillWorksWhenPingsAreDropped: under OverflowDrop a ping
// may meet a full queue; the heartbeat must go on and close a dead peer.
func TestIdleTimeoutStillWorksWhenPingsAreDropped(t *testing.T) {
	wstest.CheckGoroutines(t)
	ends := make(chan error, 1)
	_, srv := serve(t, func(c *wsroom.Conn[chatOut], msgs iter.Seq2[chatIn, error]) error {
		go func() { // fill socket buffers and the queue, so pings are dropped
			payload := strings.Repeat("p", 256<<10)
			for c.Send(chatOut{Content: payload}) != wsroom.ErrClosed {
			}
		}()
		var last error
		for _, err := range msgs {
			last = err
		}
		ends <- last
		return nil
	}, wsroom.WithOverflow(wsroom.OverflowDrop), wsroom.WithSendQueue(1, 1<<20),
		wsroom.WithHeartbeat(20*time.Millisecond, 300*time.Millisecond))
	wstest.Dial(t, srv.URL+"/ws/lobby", wstest.Options{Paused: true, Silent: true})
	select {
	case err := <-ends:
		var ce *wsroom.CloseError
		if !errors.As(err, &ce) || ce.Code != 1001 || ce.Reason != "idle timeout" {
			t.Fatalf("stream ended with %v, want 1001 idle timeout", err)
		}
	case <-time.After(wstest.Timeout):
		t.Fatal("a silent peer was never closed")
	}
}

func TestCloseReasonIsKeptValidUTF8(t *testing.T) {
	wstest.CheckGoroutines(t)
	_, srv := serve(t, func(c *wsroom.Conn[chatOut], msgs iter.Seq2[chatIn, error]) error {
		return c.Close(4000, "bad\xff"+strings.Repeat("é", 100))
	})
	c := wstest.Dial(t, srv.URL+"/ws/lobby")
	ev := c.Closed(t)
	if ev.Code != 4000 || !strings.HasPrefix(ev.Reason, "badé") || len(ev.Reason) > 123 {
		t.Fatalf("close %d %q (%d bytes), want 4000 and a valid reason of at most 123 bytes", ev.Code, ev.Reason, len(ev.Reason))
	}
}

func TestNewPanicsOnSettingsThatCannotWork(t *testing.T) {
	for name, opt := range map[string]wsroom.Option{
		"zero write timeout":  wsroom.WithWriteTimeout(0),
		"empty queue":         wsroom.WithSendQueue(0, 1<<20),
		"idle below interval": wsroom.WithHeartbeat(time.Second, time.Second/2),
		"bad origin pattern":  wsroom.WithOriginPatterns("["),
		"negative read limit": wsroom.WithReadLimit(-1),
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: New did not panic", name)
				}
			}()
			wsroom.New(echo, opt)
		}()
	}
	wsroom.New(echo, wsroom.WithHeartbeat(0, 0)) // heartbeat off: valid
}

// TestShutdownCompletesWhilePeersClose races Shutdown's close with the
// peers' own close frames, whose replies gws writes while wsroom's flusher
// is busy with echoes: every connection must still be finished and
// Shutdown return.
func TestShutdownCompletesWhilePeersClose(t *testing.T) {
	wstest.CheckGoroutines(t)
	var burst []byte
	for range 50 {
		burst = append(burst, wstest.Frame(true, 1, []byte(`{"type":"message","content":"echo me"}`))...)
	}
	burst = append(burst, wstest.Frame(true, 8, []byte{0x03, 0xe8})...) // close 1000
	for round := range 20 {
		ep := wsroom.New(echo)
		srv := httptest.NewServer(ep)
		var clients []*wstest.Client
		for range 20 {
			c, _, err := wstest.TryDial(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			clients = append(clients, c)
		}
		wstest.WaitFor(t, "connections", func() bool { return ep.Stats().Connections == 20 })
		for _, c := range clients {
			go func() { _, _ = c.NetConn().Write(burst) }()
		}
		ctx, cancel := context.WithTimeout(context.Background(), wstest.Timeout)
		err := ep.Shutdown(ctx)
		cancel()
		for _, c := range clients {
			c.Close()
		}
		srv.Close()
		if err != nil {
			t.Fatalf("round %d: Shutdown: %v with %d connections left", round, err, ep.Stats().Connections)
		}
	}
}
