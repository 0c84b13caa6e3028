package wsroom

import (
	"iter"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/wsroom/wsroom/internal/wstest"
)

// armed reports whether s's heartbeat timer is armed.
func (s *server) armed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.beats.armed
}

func TestTheHeartbeatStopsWithTheLastConnectionAndStartsWithTheNext(t *testing.T) {
	wstest.CheckGoroutines(t)
	ep := New(func(c *Conn[idleMsg], msgs iter.Seq2[idleMsg, error]) error {
		for range msgs {
		}
		return nil
	}, WithHeartbeat(10*time.Millisecond, time.Minute), WithLogger(slog.New(slog.DiscardHandler)))
	srv := httptest.NewServer(ep)
	defer srv.Close()
	if ep.srv.armed() {
		t.Fatal("heartbeat armed before any connection")
	}
	for round := range 2 {
		a, b := wstest.Dial(t, srv.URL), wstest.Dial(t, srv.URL)
		wstest.WaitFor(t, "pings on both connections", func() bool { return a.Pings.Load() >= 3 && b.Pings.Load() >= 3 })
		a.Close()
		wstest.WaitFor(t, "one connection left", func() bool { return ep.Stats().Connections == 1 })
		if !ep.srv.armed() {
			t.Fatalf("round %d: heartbeat stopped with a connection still open", round)
		}
		pings := b.Pings.Load()
		wstest.WaitFor(t, "pings on the remaining connection", func() bool { return b.Pings.Load() >= pings+3 })
		b.Close()
		wstest.WaitFor(t, "no connection left", func() bool { return ep.Stats().Connections == 0 })
		if ep.srv.armed() {
			t.Fatalf("round %d: heartbeat still armed with no connection", round)
		}
	}
}
