package main

// Recovery across instances: two chat processes on one broker that keeps
// the history (-nats through JetStream, -redis, -postgres). A member that drops from one instance
// and reconnects to the other recovers there, while someone publishes,
// and both instances deliver the room's events in the same order.

import (
	"fmt"
	"testing"
	"time"

	"github.com/wsroom/wsroom/internal/redistest"
	"github.com/wsroom/wsroom/internal/wstest"
)

func TestRecoveryOnTheOtherInstanceWithRedis(t *testing.T) {
	recoveryAcrossInstances(t, "-redis", "redis://"+redistest.Shared(t))
}

func TestRecoveryOnTheOtherInstanceWithNATS(t *testing.T) {
	recoveryAcrossInstances(t, "-nats", startNATS(t).url())
}

func TestRecoveryOnTheOtherInstanceWithPostgres(t *testing.T) {
	recoveryAcrossInstances(t, "-postgres", pgShared(t))
}

// crossReconnects is how many times the member changes instance.
const crossReconnects = 20

// recoveryAcrossInstances: listeners on A and B, a publisher on B with a
// few messages in flight, and a member that drops and reconnects 20
// times, to A and B in turn, each time resuming from its last event. The
// member receives every event once, in order, byte for byte as both
// listeners did; and the listeners received the same events in the same
// order.
func recoveryAcrossInstances(t *testing.T, flag, url string) {
	bin := chatBinary(t)
	A, B := startBinary(t, bin, flag, url), startBinary(t, bin, flag, url)
	room := fmt.Sprintf("recover-%d", time.Now().UnixNano())
	la, lb := startRecorder(t, A.base, room, "la", 0), startRecorder(t, B.base, room, "lb", 0)
	pub := startRecorder(t, B.base, room, "p", 8)

	m, got, recovered := hop(t, []string{A.base, B.base}, room)
	lastSent := pub.stop(t)
	for f := got[len(got)-1]; f.Type != "message" || *f.Content != lastSent; {
		f = nextRecorded(t, m)
		got = append(got, f)
	}
	wstest.WaitFor(t, "both listeners to receive the last message", func() bool { return la.heard(lastSent) && lb.heard(lastSent) })

	for _, r := range []*recorder{la, lb, pub} {
		if err := r.inOrder(); err != nil {
			t.Fatal(err)
		}
	}
	onA, onB := la.recorded(), lb.recorded()
	for k, f := range got {
		if f.Epoch != got[0].Epoch || f.Seq != got[0].Seq+uint64(k) {
			t.Fatalf("event %d of the member is %s after seq %d: want every seq once, in order", k, f.raw, got[max(k-1, 0)].Seq)
		}
		if onA[f.Seq] != f.raw || onB[f.Seq] != f.raw {
			t.Fatalf("seq %d: the member got %s, the listener on A %s, on B %s", f.Seq, f.raw, onA[f.Seq], onB[f.Seq])
		}
	}
	for seq, raw := range onB {
		if a, ok := onA[seq]; ok && a != raw {
			t.Fatalf("seq %d: A delivered %s, B %s", seq, a, raw)
		}
	}
	t.Logf("%s: %d reconnects across instances, %d events recovered; the member received %d events (seq %d to %d) once each, in order, as both instances delivered them; p sent %d",
		flag, crossReconnects, recovered, len(got), got[0].Seq, got[len(got)-1].Seq, pub.count())
}

// hop joins member "m" to room at bases[0] and, crossReconnects times,
// drops it once it has heard some of p's messages and reconnects it to
// the other instance, resuming from its last event, which must recover.
// It returns m's last connection, the recorded events it received in
// order, and how many were recovered.
func hop(t *testing.T, bases []string, room string) (*wstest.Client, []chatFrame, int) {
	t.Helper()
	m := wstest.Dial(t, roomURL(bases[0], room, "m", ""))
	got := []chatFrame{expect(t, m, "joined", "m", nil)}
	recovered := 0
	for i := 0; ; i++ {
		for heard := 0; heard < 3; { // some of p's messages on this connection
			f := nextRecorded(t, m)
			got = append(got, f)
			if f.Type == "message" && f.Username == "p" {
				heard++
			}
		}
		if i == crossReconnects {
			return m, got, recovered
		}
		m.Close()
		last, to := got[len(got)-1], bases[(i+1)%2]
		m = wstest.Dial(t, roomURL(to, room, "m", resumeQuery(last)))
		n := readRecovery(t, m)
		if !n.Recovered || n.Epoch != last.Epoch {
			t.Fatalf("reconnect %d, to %s, after seq %d: %+v, want recovered in epoch %s", i+1, to, last.Seq, n, last.Epoch)
		}
		recovered += n.Missed
		for range n.Missed {
			got = append(got, nextRecorded(t, m))
		}
		// Then the live stream, the member's own joined among it: through a
		// broker, events recorded on the other instance while this one
		// records the joined may come first.
		for f := (chatFrame{}); f.Type != "joined" || f.Username != "m"; {
			f = nextRecorded(t, m)
			got = append(got, f)
		}
	}
}
