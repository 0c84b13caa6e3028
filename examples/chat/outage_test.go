package main

import (
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/redistest"
	"github.com/wsroom/wsroom/internal/wstest"
)

// A broker restart disconnects nobody: two chat instances on one broker,
// a sender and a listener on each, the senders sending throughout while
// the real broker server is stopped for 2 s and started again.

func TestNATSRestartDisconnectsNobody(t *testing.T) {
	ns := startNATS(t)
	brokerRestartDisconnectsNobody(t, "-nats", ns.url(), ns.stop, ns.start)
}

func TestRedisRestartDisconnectsNobody(t *testing.T) {
	srv := redistest.Own(t)
	brokerRestartDisconnectsNobody(t, "-redis", "redis://"+srv.Addr, srv.Stop, func() { srv.Restart(t) })
}

// Timing of the scenario (not synchronisation: the test waits on events).
const (
	outageFor  = 2 * time.Second        // how long the broker server is down
	sendEvery  = 20 * time.Millisecond  // each sender's pace
	crossAgain = 5 * time.Second        // messages must cross again within this of the restart
	inFlight   = 100 * time.Millisecond // at the stop, what a client library may lose before noticing
)

func brokerRestartDisconnectsNobody(t *testing.T, flag, url string, stop, start func()) {
	bin := chatBinary(t)
	A, B := startBinary(t, bin, flag, url), startBinary(t, bin, flag, url)
	room := fmt.Sprintf("outage-%d", time.Now().UnixNano())
	a1, a2 := watch(t, A.base, room, "a1"), watch(t, A.base, room, "a2")
	b1, b2 := watch(t, B.base, room, "b1"), watch(t, B.base, room, "b2")
	for _, m := range []*watched{a1, a2, b1, b2} {
		m.joinedWithin(t, wsroom.BrokerReadyTimeout)
	}

	sa, sb := startSender(a1), startSender(b1)
	crossed := func(from *sender, to *watched, since time.Time) bool {
		return to.heardAfter(from.name, from.sentAt, since)
	}
	wstest.WaitFor(t, "messages to cross before the outage", func() bool {
		return crossed(sa, b2, time.Time{}) && crossed(sb, a2, time.Time{})
	})

	stopped := time.Now()
	stop()
	// Senders learn that their messages stayed local.
	wstest.WaitFor(t, "an error frame to each sender", func() bool {
		return a1.errors() > 0 && b1.errors() > 0
	})
	// Members who join during the outage are let in at once.
	a3, b3 := watch(t, A.base, room, "a3"), watch(t, B.base, room, "b3")
	a3.joinedWithin(t, wsroom.BrokerReadyTimeout)
	b3.joinedWithin(t, wsroom.BrokerReadyTimeout)
	time.Sleep(time.Until(stopped.Add(outageFor))) // the outage's length is the scenario
	start()
	restarted := time.Now()
	// And so are members who join while the instances reconnect.
	a4, b4 := watch(t, A.base, room, "a4"), watch(t, B.base, room, "b4")
	a4.joinedWithin(t, wsroom.BrokerReadyTimeout)
	b4.joinedWithin(t, wsroom.BrokerReadyTimeout)

	wstest.WaitWithin(t, crossAgain, "messages to cross again after the restart", func() bool {
		return crossed(sa, b2, restarted) && crossed(sb, a2, restarted)
	})
	resumedAB, resumedBA := b2.firstHeardAfter(sa.name, sa.sentAt, restarted), a2.firstHeardAfter(sb.name, sb.sentAt, restarted)
	// Steady traffic after the crossing, then a last message each, which
	// must reach everyone.
	moreA, moreB := sa.count()+10, sb.count()+10
	wstest.WaitFor(t, "traffic after the crossing", func() bool {
		return b2.heard("a1", moreA) && a2.heard("b1", moreB)
	})
	lastA, lastB := sa.stop(t), sb.stop(t)
	wstest.WaitFor(t, "the last messages to reach every member", func() bool {
		return a2.heard("a1", lastA) && b2.heard("a1", lastA) && a2.heard("b1", lastB) && b2.heard("b1", lastB) &&
			a1.heard("a1", lastA) && b1.heard("b1", lastB)
	})

	for _, m := range []*watched{a1, a2, b1, b2, a3, b3, a4, b4} {
		if ev := m.closed(); ev != nil {
			t.Errorf("%s was disconnected: %d %q", m.name, ev.Code, ev.Reason)
		}
	}
	reportA := check(t, sa, a1, a2, b2, stopped, restarted, resumedAB)
	reportB := check(t, sb, b1, b2, a2, stopped, restarted, resumedBA)
	t.Logf("%s: outage %v; crossing again %v (A→B) and %v (B→A) after the restart; disconnects 0", flag,
		outageFor, resumedAB.Sub(restarted).Round(time.Millisecond), resumedBA.Sub(restarted).Round(time.Millisecond))
	t.Logf("%s: %s", flag, reportA)
	t.Logf("%s: %s", flag, reportB)
}

// check verifies one sender's messages: its own instance's listener got
// every one, in order, once; the sender got each back and an error frame
// for the ones that did not cross; the other instance's listener got the
// rest in order, and missed without an error frame only messages sent in
// the instant the broker died or while the instances reconnected.
func check(t *testing.T, s *sender, self, local, remote *watched, stopped, restarted, resumed time.Time) string {
	t.Helper()
	n := s.count()
	if got := local.contents(s.name); !sameSeq(got, n) {
		t.Errorf("%s's messages on its own instance: got %d (%v...), want 0..%d in order: local delivery must go on", s.name, len(got), head(got), n-1)
	}
	if got := self.contents(s.name); !sameSeq(got, n) {
		t.Errorf("%s's own messages back: got %d, want 0..%d in order", s.name, len(got), n-1)
	}
	errored := self.erroredIndices(s.name)
	heard := map[int]bool{}
	last := -1
	for _, i := range remote.contents(s.name) {
		if i < last {
			t.Errorf("%s's message %d reached the other instance after %d", s.name, i, last)
		}
		last = i
		heard[i] = true
	}
	var missed, silent, erroredLate int
	for i := range n {
		at := s.sentAt(i)
		if errored[i] && at.After(resumed) {
			erroredLate++
		}
		if heard[i] {
			continue
		}
		missed++
		if errored[i] {
			continue
		}
		silent++
		instantOfStop := at.After(stopped.Add(-inFlight)) && at.Before(stopped.Add(inFlight))
		reconnecting := at.After(restarted.Add(-inFlight)) && at.Before(resumed)
		if !instantOfStop && !reconnecting {
			t.Errorf("%s's message %d (sent %v after the stop) did not cross and its sender was not told", s.name, i, at.Sub(stopped).Round(time.Millisecond))
		}
	}
	if erroredLate > 0 {
		t.Errorf("%s got %d error frames for messages sent after crossing resumed", s.name, erroredLate)
	}
	return fmt.Sprintf("%s sent %d: %d crossed, %d did not (%d with an error frame to the sender, %d lost unannounced at the stop or during reconnection)",
		s.name, n, n-missed, missed, missed-silent, silent)
}

func sameSeq(got []int, n int) bool {
	if len(got) != n {
		return false
	}
	for i, x := range got {
		if x != i {
			return false
		}
	}
	return true
}

func head(xs []int) []int { return xs[:min(len(xs), 5)] }

// watched is a chat member whose frames a goroutine records as they come.
type watched struct {
	name   string
	c      *wstest.Client
	joined chan struct{} // closed when its own joined arrives

	mu     sync.Mutex
	frames []seen
	end    *wstest.Event
}

// seen is one frame a member received, and when.
type seen struct {
	at                      time.Time
	typ, user, content, err string
}

func watch(t *testing.T, base, room, name string) *watched {
	t.Helper()
	m := &watched{name: name, joined: make(chan struct{}), c: wstest.Dial(t, roomURL(base, room, name, ""))}
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			ev, ok := m.c.NextWithin(50 * time.Millisecond)
			if !ok {
				select {
				case <-quit:
					return
				default:
					continue
				}
			}
			if ev.Closed {
				m.mu.Lock()
				m.end = &ev
				m.mu.Unlock()
				return
			}
			var f struct{ Type, Username, Content, Error string }
			_ = json.Unmarshal(ev.Data, &f)
			m.mu.Lock()
			m.frames = append(m.frames, seen{time.Now(), f.Type, f.Username, f.Content, f.Error})
			m.mu.Unlock()
			if f.Type == "joined" && f.Username == name {
				close(m.joined)
			}
		}
	}()
	t.Cleanup(func() {
		close(quit)
		<-done
		m.c.Close()
	})
	return m
}

// joinedWithin fails the test unless m received its own joined within d
// of dialling having returned.
func (m *watched) joinedWithin(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-m.joined:
	case <-time.After(d):
		t.Fatalf("%s did not receive its own joined within %v", m.name, d)
	}
}

func (m *watched) closed() *wstest.Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.end
}

func (m *watched) errors() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, f := range m.frames {
		if f.typ == "error" {
			n++
		}
	}
	return n
}

// contents returns the indices of the messages from user that m received,
// in the order received.
func (m *watched) contents(user string) []int {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []int
	for _, f := range m.frames {
		if i, ok := index(f, user); ok {
			out = append(out, i)
		}
	}
	return out
}

func index(f seen, user string) (int, bool) {
	if f.typ != "message" || f.user != user {
		return 0, false
	}
	i, err := strconv.Atoi(strings.TrimPrefix(f.content, user+" "))
	return i, err == nil
}

func (m *watched) heard(user string, i int) bool {
	for _, x := range m.contents(user) {
		if x == i {
			return true
		}
	}
	return false
}

// heardAfter reports whether m received a message from user that was sent
// after since.
func (m *watched) heardAfter(user string, sentAt func(int) time.Time, since time.Time) bool {
	return !m.firstHeardAfter(user, sentAt, since).IsZero()
}

// firstHeardAfter returns when m received the first message from user sent
// after since, or the zero time.
func (m *watched) firstHeardAfter(user string, sentAt func(int) time.Time, since time.Time) time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, f := range m.frames {
		if i, ok := index(f, user); ok && sentAt(i).After(since) {
			return f.at
		}
	}
	return time.Time{}
}

// erroredIndices returns the sender's messages that an error frame
// answered: the handler sends it right after the publish, so it follows
// the sender's own copy of that message and precedes the next.
func (m *watched) erroredIndices(user string) map[int]bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[int]bool{}
	last := -1
	for _, f := range m.frames {
		if i, ok := index(f, user); ok {
			last = i
		} else if f.typ == "error" && last >= 0 {
			out[last] = true
		}
	}
	return out
}

// sender sends "NAME i" every sendEvery from a goroutine until stopped.
type sender struct {
	name string
	quit chan struct{}
	done chan error

	mu   sync.Mutex
	sent []time.Time
}

func startSender(m *watched) *sender {
	s := &sender{name: m.name, quit: make(chan struct{}), done: make(chan error, 1)}
	go func() {
		tick := time.NewTicker(sendEvery)
		defer tick.Stop()
		for i := 0; ; i++ {
			b, _ := json.Marshal(map[string]string{"type": "message", "content": fmt.Sprintf("%s %d", s.name, i)})
			s.mu.Lock()
			s.sent = append(s.sent, time.Now())
			s.mu.Unlock()
			if err := m.c.Conn().WriteString(string(b)); err != nil {
				s.done <- fmt.Errorf("%s: send %d: %w", s.name, i, err)
				return
			}
			select {
			case <-tick.C:
			case <-s.quit:
				s.done <- nil
				return
			}
		}
	}()
	return s
}

// stop ends the sending and returns the index of the last message sent.
func (s *sender) stop(t *testing.T) int {
	t.Helper()
	close(s.quit)
	if err := <-s.done; err != nil {
		t.Fatal(err)
	}
	return s.count() - 1
}

func (s *sender) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sent)
}

func (s *sender) sentAt(i int) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent[i]
}

// natsServer is a real nats-server in the test process that can be
// stopped and started again on the same port.
type natsServer struct {
	t    *testing.T
	port int
	srv  *server.Server
}

func startNATS(t *testing.T) *natsServer {
	ns := &natsServer{t: t, port: server.RANDOM_PORT}
	ns.start()
	ns.port = ns.srv.Addr().(*net.TCPAddr).Port
	t.Cleanup(ns.stop)
	return ns
}

func (ns *natsServer) start() {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: ns.port, NoLog: true, NoSigs: true})
	if err != nil {
		ns.t.Fatal(err)
	}
	srv.Start()
	if !srv.ReadyForConnections(wstest.Timeout) {
		ns.t.Fatal("nats-server not ready")
	}
	ns.srv = srv
}

func (ns *natsServer) stop() {
	if ns.srv != nil {
		ns.srv.Shutdown()
		ns.srv.WaitForShutdown()
		ns.srv = nil
	}
}

func (ns *natsServer) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", ns.port) }
