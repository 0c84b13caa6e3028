package main

// Tests of the chat's history and recovery (issue 10's contract): recorded
// events carry seq and epoch, a member that reconnects with
// ?since=&epoch= recovers exactly what it missed and then the live stream,
// or is told it did not. In-process here; across instances in
// recovery_cluster_test.go.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/wstest"
	"github.com/wsroom/wsroom/wsroomtest"
)

// resumeQuery is the query that resumes after f.
func resumeQuery(f chatFrame) string {
	return fmt.Sprintf("%s=%d&%s=%s", wsroom.QuerySince, f.Seq, wsroom.QueryEpoch, f.Epoch)
}

// rejoin connects username to room again, resuming after the recorded
// event last.
func (s *chatServer) rejoin(t *testing.T, room, username string, last chatFrame) *member {
	t.Helper()
	return wsroomtest.Dial[map[string]string, json.RawMessage](t, s.srv, roomPath(room, username, resumeQuery(last)))
}

// recoveryNotice is the frame a reconnection receives first.
type recoveryNotice struct {
	Type      string `json:"type"`
	Recovered bool   `json:"recovered"`
	Epoch     string `json:"epoch"`
	Missed    int    `json:"missed"`
}

// parseRecovery decodes a recovery notice, checking it has exactly the
// contract's four keys.
func parseRecovery(data []byte) (recoveryNotice, error) {
	var n recoveryNotice
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(data, &keys); err != nil {
		return n, fmt.Errorf("frame %s: %v", data, err)
	}
	if err := json.Unmarshal(data, &n); err != nil || len(keys) != 4 || n.Type != "recovery" || n.Epoch == "" {
		return n, fmt.Errorf("got %s, want {\"type\":\"recovery\",\"recovered\":…,\"epoch\":…,\"missed\":…}", data)
	}
	return n, nil
}

// expectRecovery reads the next frame of c and checks it is the recovery
// notice {"type":"recovery","recovered":recovered,"epoch":epoch,"missed":missed};
// an empty epoch accepts any.
func expectRecovery[C chatClient](t *testing.T, c C, recovered bool, epoch string, missed int) recoveryNotice {
	t.Helper()
	n := readRecovery(t, c)
	if n.Recovered != recovered || n.Missed != missed || (epoch != "" && n.Epoch != epoch) {
		t.Fatalf("got %+v, want recovered %v, epoch %q, missed %d", n, recovered, epoch, missed)
	}
	return n
}

// TestRecordedEventsCarryTheirPositionAndTypingNone: joined, message and
// left carry the room's next seq, in one epoch; typing carries neither.
func TestRecordedEventsCarryTheirPositionAndTypingNone(t *testing.T) {
	wstest.CheckGoroutines(t)
	s := startChat(t)
	ann := wsroomtest.Dial[map[string]string, json.RawMessage](t, s.srv, roomPath("pos", "ann", ""))
	first := expect(t, ann, "joined", "ann", nil)
	bob := s.join(t, "pos", "bob")
	sendMessage(t, bob, "hi")
	bob.SendText(`{"type":"typing"}`)
	bob.Close()
	got := []chatFrame{first, expect(t, ann, "joined", "bob", nil), expect(t, ann, "message", "bob", str("hi"))}
	if typing := expect(t, ann, "typing", "bob", nil); typing.Seq != 0 || typing.Epoch != "" {
		t.Fatalf("typing %s carries a position", typing.raw)
	}
	got = append(got, expect(t, ann, "left", "bob", nil))
	for k, f := range got {
		if f.Seq != first.Seq+uint64(k) || f.Epoch != first.Epoch || f.Seq == 0 {
			t.Fatalf("event %d is %s, want seq %d of epoch %q", k, f.raw, first.Seq+uint64(k), first.Epoch)
		}
	}
}

// TestReconnectAfterMissingEventsRecoversThemExactlyThenLive: a member
// drops and misses N recorded events (its own left among them); back with
// its last position it is told it recovered N, receives exactly the N
// events the others received (byte for byte), then its own joined, then
// the live stream. The history holds 1,000 events: missing 1,001 is not
// recovered, and the stream is a fresh join's.
func TestReconnectAfterMissingEventsRecoversThemExactlyThenLive(t *testing.T) {
	wstest.CheckGoroutines(t)
	s := startChat(t)
	for _, tc := range []struct {
		missed    int
		recovered bool
	}{{1, true}, {100, true}, {999, true}, {1000, true}, {1001, false}} {
		t.Run(fmt.Sprint(tc.missed), func(t *testing.T) {
			room := fmt.Sprintf("missed-%d", tc.missed)
			w := s.join(t, room, "w")
			m := s.join(t, room, "m")
			expect(t, w, "joined", "m", nil)
			sendMessage(t, w, "seen")
			last := expect(t, m, "message", "w", str("seen"))
			expect(t, w, "message", "w", str("seen"))
			m.Close()
			missed := []chatFrame{expect(t, w, "left", "m", nil)}
			for i := range tc.missed - 1 {
				sendMessage(t, w, fmt.Sprint(i))
			}
			for i := range tc.missed - 1 {
				missed = append(missed, expect(t, w, "message", "w", str(fmt.Sprint(i))))
			}

			back := s.rejoin(t, room, "m", last)
			if tc.recovered {
				expectRecovery(t, back, true, last.Epoch, tc.missed)
				for i, want := range missed {
					if got := next(t, back); got.raw != want.raw {
						t.Fatalf("replayed event %d: got %s, want %s, as the others received it", i, got.raw, want.raw)
					}
				}
			} else {
				expectRecovery(t, back, false, last.Epoch, 0)
			}
			joined := expect(t, back, "joined", "m", nil)
			if seen := expect(t, w, "joined", "m", nil); joined.raw != seen.raw || joined.Seq != last.Seq+uint64(tc.missed)+1 {
				t.Fatalf("own joined %s, others saw %s, want seq %d", joined.raw, seen.raw, last.Seq+uint64(tc.missed)+1)
			}
			sendMessage(t, w, "live")
			if live := expect(t, back, "message", "w", str("live")); live.Seq != joined.Seq+1 || live.Epoch != last.Epoch {
				t.Fatalf("live event %s after joined seq %d", live.raw, joined.Seq)
			}
		})
	}
}

// TestAMemberAloneDropsAndRecovers: the room empties when its only member
// drops, but its history stays: back with its position, the member
// recovers its own left.
func TestAMemberAloneDropsAndRecovers(t *testing.T) {
	wstest.CheckGoroutines(t)
	s := startChat(t)
	m := s.join(t, "alone", "m")
	sendMessage(t, m, "note to self")
	last := expect(t, m, "message", "m", str("note to self"))
	m.Drop()
	wstest.WaitFor(t, "the empty room to be removed", func() bool { return !roomListed(s.rooms, "alone") })
	back := s.rejoin(t, "alone", "m", last)
	expectRecovery(t, back, true, last.Epoch, 1)
	if left := expect(t, back, "left", "m", nil); left.Seq != last.Seq+1 {
		t.Fatalf("replayed %s, want seq %d", left.raw, last.Seq+1)
	}
	if joined := expect(t, back, "joined", "m", nil); joined.Seq != last.Seq+2 {
		t.Fatalf("joined %s, want seq %d", joined.raw, last.Seq+2)
	}
}

// TestTypingIsNeverReplayed: typing signals sent while a member was away
// are not among what it recovers.
func TestTypingIsNeverReplayed(t *testing.T) {
	wstest.CheckGoroutines(t)
	s := startChat(t)
	w := s.join(t, "typing", "w")
	m := s.join(t, "typing", "m")
	expect(t, w, "joined", "m", nil)
	sendMessage(t, w, "before")
	last := expect(t, m, "message", "w", str("before"))
	expect(t, w, "message", "w", str("before"))
	m.Close()
	expect(t, w, "left", "m", nil)
	for range 3 {
		w.SendText(`{"type":"typing"}`)
	}
	sendMessage(t, w, "while away")
	for range 3 {
		expect(t, w, "typing", "w", nil)
	}
	expect(t, w, "message", "w", str("while away"))

	back := s.rejoin(t, "typing", "m", last)
	expectRecovery(t, back, true, last.Epoch, 2)
	expect(t, back, "left", "m", nil)
	expect(t, back, "message", "w", str("while away"))
	expect(t, back, "joined", "m", nil)
	w.SendText(`{"type":"typing"}`) // live typing does reach it
	expect(t, back, "typing", "w", nil)
}

// TestAnotherEpochOrAPositionAheadIsNotRecovered: a position of another
// history, or one the history has not reached, is answered
// "recovered":false with the current epoch, and the stream is a fresh
// join's.
func TestAnotherEpochOrAPositionAheadIsNotRecovered(t *testing.T) {
	wstest.CheckGoroutines(t)
	s := startChat(t)
	w := s.join(t, "epoch", "w")
	sendMessage(t, w, "x")
	last := expect(t, w, "message", "w", str("x"))
	for name, pos := range map[string]chatFrame{
		"another epoch": {Seq: last.Seq, Epoch: "not" + last.Epoch},
		"ahead":         {Seq: last.Seq + 100, Epoch: last.Epoch},
	} {
		t.Run(name, func(t *testing.T) {
			back := s.rejoin(t, "epoch", "m", pos)
			expectRecovery(t, back, false, last.Epoch, 0)
			joined := expect(t, back, "joined", "m", nil)
			if joined.Epoch != last.Epoch {
				t.Fatalf("joined %s, want epoch %s", joined.raw, last.Epoch)
			}
			expect(t, w, "joined", "m", nil)
			back.Close()
			expect(t, w, "left", "m", nil)
		})
	}
}

// TestMalformedPositionIsRefusedWith400: since that is not a non-negative
// integer, or since without epoch, is refused before the upgrade; epoch
// alone is a fresh join.
func TestMalformedPositionIsRefusedWith400(t *testing.T) {
	wstest.CheckGoroutines(t)
	s := startChat(t)
	for _, q := range []string{"since=abc&epoch=e", "since=-1&epoch=e", "since=1.5&epoch=e", "since=&epoch=e",
		"since=1", "since=1&epoch=", "since=18446744073709551616&epoch=e"} {
		wsroomtest.ExpectRefused(t, s.srv, roomPath("bad", "m", q), http.StatusBadRequest)
	}
	c := wsroomtest.Dial[map[string]string, json.RawMessage](t, s.srv, roomPath("bad", "m", "epoch=e"))
	expect(t, c, "joined", "m", nil)
}

// TestWithoutSinceTheOwnJoinedIsTheFirstFrame: a fresh join gets no
// notice; its own joined comes first and takes the room's next seq.
func TestWithoutSinceTheOwnJoinedIsTheFirstFrame(t *testing.T) {
	wstest.CheckGoroutines(t)
	s := startChat(t)
	w := s.join(t, "fresh", "w")
	sendMessage(t, w, "x")
	x := expect(t, w, "message", "w", str("x"))
	c := wsroomtest.Dial[map[string]string, json.RawMessage](t, s.srv, roomPath("fresh", "m", ""))
	if f := next(t, c); f.Type != "joined" || f.Username != "m" || f.Seq != x.Seq+1 || f.Epoch != x.Epoch {
		t.Fatalf("first frame %s, want m's joined at seq %d", f.raw, x.Seq+1)
	}
}

// TestRestartWithoutBrokerIsNotRecovered runs the chat binary, kills it
// and starts it again on the same port: the history was in the process,
// so a position from before is of an old epoch, answered "recovered":false
// with a new one.
func TestRestartWithoutBrokerIsNotRecovered(t *testing.T) {
	bin := chatBinary(t)
	p := startBinary(t, bin)
	addr := p.base[len("http://"):]
	m := wstest.Dial(t, roomURL(p.base, "restart", "m", ""))
	expect(t, m, "joined", "m", nil)
	sendMessage(t, m, "before the restart")
	last := expect(t, m, "message", "m", str("before the restart"))
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
	m.Closed(t)

	p = startBinary(t, bin, "-addr", addr)
	back := wstest.Dial(t, roomURL(p.base, "restart", "m", resumeQuery(last)))
	n := expectRecovery(t, back, false, "", 0)
	if n.Epoch == last.Epoch {
		t.Fatalf("after a restart the epoch is still %s", n.Epoch)
	}
	if joined := expect(t, back, "joined", "m", nil); joined.Seq != 1 || joined.Epoch != n.Epoch {
		t.Fatalf("joined %s, want seq 1 of epoch %s", joined.raw, n.Epoch)
	}
}

// TestRecoveryIsExactlyOnceAcrossAHundredReconnectsUnderLoad: a member
// drops (closing, or vanishing) and reconnects with its last position 100
// times while another publishes at full speed (a window of messages in
// flight); across all its connections it receives every recorded event
// of the room exactly once, in seq order, as the publisher received them.
func TestRecoveryIsExactlyOnceAcrossAHundredReconnectsUnderLoad(t *testing.T) {
	wstest.CheckGoroutines(t)
	s := startChat(t, wsroom.WithRateLimit(0, 0)) // the publisher floods on purpose
	const reconnects = 100
	deadline := time.Now().Add(90 * time.Second)
	pub := startFlood(t, s.srv.URL, "load", "p")

	m := wsroomtest.Dial[map[string]string, json.RawMessage](t, s.srv, roomPath("load", "m", ""))
	got := []chatFrame{expect(t, m, "joined", "m", nil)} // every recorded event m received, in order
	for i := 0; ; i++ {
		for heard := 0; heard < 3; { // some of the flood on this connection
			f := nextRecorded(t, m)
			got = append(got, f)
			if f.Type == "message" && f.Username == "p" {
				heard++
			}
		}
		if i == reconnects {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d reconnects within the deadline", i)
		}
		if i%2 == 0 {
			m.Close()
		} else {
			m.Drop()
		}
		last := got[len(got)-1]
		m = s.rejoin(t, "load", "m", last)
		n := readRecovery(t, m)
		if !n.Recovered || n.Epoch != last.Epoch {
			t.Fatalf("reconnect %d after seq %d: %+v, want recovered in epoch %s", i+1, last.Seq, n, last.Epoch)
		}
		for range n.Missed {
			got = append(got, nextRecorded(t, m))
		}
		got = append(got, expect(t, m, "joined", "m", nil))
	}
	lastSent := pub.stop(t)
	for f := got[len(got)-1]; f.Type != "message" || *f.Content != lastSent; {
		f = nextRecorded(t, m)
		got = append(got, f)
	}

	byPublisher := pub.recorded()
	for k, f := range got {
		if f.Epoch != got[0].Epoch || f.Seq != got[0].Seq+uint64(k) {
			t.Fatalf("event %d of the member is %s after seq %d: want every seq once, in order", k, f.raw, got[max(k-1, 0)].Seq)
		}
		if want, ok := byPublisher[f.Seq]; !ok || want != f.raw {
			t.Fatalf("seq %d: the member got %s, the publisher %s", f.Seq, f.raw, want)
		}
	}
	t.Logf("%d reconnects: the member received %d recorded events (seq %d to %d) once each, in order; %s sent %d",
		reconnects, len(got), got[0].Seq, got[len(got)-1].Seq, pub.name, pub.count())
}

// nextRecorded reads the next frame of c, which must be a recorded event.
func nextRecorded[C chatClient](t *testing.T, c C) chatFrame {
	t.Helper()
	f := next(t, c)
	if f.Seq == 0 {
		t.Fatalf("got %s, want a recorded event", f.raw)
	}
	return f
}

// readRecovery reads the next frame of c, which must be a recovery notice.
func readRecovery[C chatClient](t *testing.T, c C) recoveryNotice {
	t.Helper()
	n, err := parseRecovery(message(t, c))
	if err != nil {
		t.Fatal(err)
	}
	return n
}
