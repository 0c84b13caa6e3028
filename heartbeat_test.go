package wsroom_test

import (
	"testing"
	"time"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/wstest"
)

// The heartbeat (heartbeat.go): pings, and the idle timeout. Dead peers
// under attack are TestHostileDeadPeersAreReclaimed in hostile_test.go.

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
