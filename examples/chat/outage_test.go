package main

import (
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/pgtest"
	"github.com/wsroom/wsroom/internal/redistest"
	"github.com/wsroom/wsroom/internal/wstest"
)

// A broker restart disconnects nobody: two chat instances on one broker,
// a sender and a listener on each, the senders sending throughout while
// the real broker server is stopped for 2 s and started again. Every
// broker keeps the history (-nats, -redis, -postgres): a message sent
// meanwhile reaches nobody, since it has no position, and its sender alone
// is told. After the restart members recover what was recorded.

func TestNATSRestartDisconnectsNobody(t *testing.T) {
	ns := startNATS(t)
	brokerRestartDisconnectsNobody(t, "-nats", ns.url(), ns.stop, ns.start)
}

func TestRedisRestartDisconnectsNobody(t *testing.T) {
	srv := redistest.Own(t)
	brokerRestartDisconnectsNobody(t, "-redis", "redis://"+srv.Addr, srv.Stop, func() { srv.Restart(t) })
}

func TestPostgresRestartDisconnectsNobody(t *testing.T) {
	srv := pgtest.Own(t)
	brokerRestartDisconnectsNobody(t, "-postgres", srv.URL, srv.Stop, func() { srv.Restart(t) })
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
	away := watch(t, A.base, room, "away") // drops before the outage, comes back after it
	for _, m := range []*watched{a1, a2, b1, b2, away} {
		m.joinedWithin(t, wsroom.BrokerReadyTimeout)
	}

	sa, sb := startSender(a1), startSender(b1)
	crossed := func(from *sender, to *watched, since time.Time) bool {
		return to.heardAfter(from.name, from.sentAt, since)
	}
	wstest.WaitFor(t, "messages to cross before the outage", func() bool {
		return crossed(sa, b2, time.Time{}) && crossed(sb, a2, time.Time{})
	})

	wstest.WaitFor(t, "away to hear both senders", func() bool {
		return away.heardAfter(sa.name, sa.sentAt, time.Time{}) && away.heardAfter(sb.name, sb.sentAt, time.Time{})
	})
	awayFrom := away.leave()

	stopped, restarted, joiners := outage(t, A.base, B.base, room, a1, a2, b1, stop, start)
	a3, b3, a4, b4 := joiners[0], joiners[1], joiners[2], joiners[3]

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
			a1.heard("a1", lastA) && b1.heard("b1", lastB) &&
			a4.heard("a1", lastA) && b4.heard("b1", lastB)
	})

	connectedThroughout(t, a1, a2, b1, b2, a3, b3, a4, b4)
	reportA := checkRecorded(t, sa, a1, a2, b2, stopped, resumedAB)
	reportB := checkRecorded(t, sb, b1, b2, a2, stopped, resumedBA)
	t.Logf("%s: outage %v; crossing again %v (A→B) and %v (B→A) after the restart; disconnects 0", flag,
		outageFor, resumedAB.Sub(restarted).Round(time.Millisecond), resumedBA.Sub(restarted).Round(time.Millisecond))
	t.Logf("%s: %s", flag, reportA)
	t.Logf("%s: %s", flag, reportB)
	t.Logf("%s: %s", flag, recoveriesAfterRestart(t, flag, A.base, B.base, room, awayFrom, b2))
}

// outage stops the broker for outageFor and starts it again, checking
// meanwhile that the senders a1 and b1 are told (error frames), that
// typing still reaches a2, and that members who join during the outage
// (a3, b3) are let in at once. It returns when it stopped and restarted
// the broker, and a3, b3 and, joined while the instances reconnect, a4
// and b4.
func outage(t *testing.T, baseA, baseB, room string, a1, a2, b1 *watched, stop, start func()) (stopped, restarted time.Time, joiners []*watched) {
	t.Helper()
	stopped = time.Now()
	stop()
	// Senders learn that their messages stayed local, or reached nobody.
	wstest.WaitFor(t, "an error frame to each sender", func() bool {
		return a1.errors() > 0 && b1.errors() > 0
	})
	// Typing signals are ephemeral: they still reach the instance's members.
	inRoom(t, a1, a2)
	// Members who join during the outage are let in at once. Their joined
	// cannot be recorded, so it reaches nobody, themselves included: each
	// is told, with an error frame; typing shows they are in.
	a3, b3 := watch(t, baseA, room, "a3"), watch(t, baseB, room, "b3")
	wstest.WaitFor(t, "an error frame to each joiner whose joined could not be recorded", func() bool {
		return a3.errors() > 0 && b3.errors() > 0
	})
	inRoom(t, a1, a3)
	inRoom(t, b1, b3)
	time.Sleep(time.Until(stopped.Add(outageFor))) // the outage's length is the scenario
	start()
	restarted = time.Now()
	// And so are members who join while the instances reconnect (the last
	// messages reach them: the caller checks).
	a4, b4 := watch(t, baseA, room, "a4"), watch(t, baseB, room, "b4")
	return stopped, restarted, []*watched{a3, b3, a4, b4}
}

// connectedThroughout fails the test for each member that was disconnected.
func connectedThroughout(t *testing.T, members ...*watched) {
	t.Helper()
	for _, m := range members {
		if ev := m.closed(); ev != nil {
			t.Errorf("%s was disconnected: %d %q", m.name, ev.Code, ev.Reason)
		}
	}
}

// inRoom checks that a typing signal of typist reaches m within
// wsroom.BrokerReadyTimeout: that m is in typist's room on its instance.
func inRoom(t *testing.T, typist, m *watched) {
	t.Helper()
	typist.c.SendText(t, `{"type":"typing"}`)
	wstest.WaitWithin(t, wsroom.BrokerReadyTimeout, fmt.Sprintf("%s's typing to reach %s", typist.name, m.name),
		func() bool { return m.typed(typist.name) })
}

// recoveriesAfterRestart checks what members recover once the broker is
// back: one that left before the outage (from) recovers on the other
// instance if the broker kept the history through its restart (PostgreSQL
// does; the tests' Redis runs without persistence, so a restart is a new
// epoch, and it is told it did not recover); one that drops after the
// restart always recovers.
func recoveriesAfterRestart(t *testing.T, flag, baseA, baseB, room string, from seen, listener *watched) string {
	t.Helper()
	n, replayed := resume(t, baseB, room, "away", from)
	if keeps := flag != "-redis"; n.Recovered != keeps {
		t.Errorf("%s: back from before the outage: %+v, want recovered %v", flag, n, keeps)
	}
	if n.Recovered && (len(replayed) == 0 || replayed[0].Seq != from.seq+1 || replayed[0].Epoch != from.epoch) {
		t.Errorf("%s: back from before the outage after seq %d: replayed %d, first %+v", flag, from.seq, len(replayed), replayed)
	}
	report := fmt.Sprintf("back from before the outage: recovered %v, %d missed", n.Recovered, n.Missed)
	since := listener.last()
	m, again := resume(t, baseA, room, "after", since)
	if !m.Recovered || len(again) != m.Missed {
		t.Errorf("%s: back from after the restart: %+v, want recovered", flag, m)
	}
	return report + fmt.Sprintf("; back from after the restart: recovered %v, %d missed", m.Recovered, m.Missed)
}

// resume connects name to room at base, resuming after from, and returns
// the recovery notice and the events replayed, checked to follow from in
// order.
func resume(t *testing.T, base, room, name string, from seen) (recoveryNotice, []chatFrame) {
	t.Helper()
	c := wstest.Dial(t, roomURL(base, room, name, resumeQuery(chatFrame{Seq: from.seq, Epoch: from.epoch})))
	defer c.Close()
	n := readRecovery(t, c)
	var replayed []chatFrame
	for k := range n.Missed {
		f := nextRecorded(t, c)
		if f.Seq != from.seq+uint64(k)+1 || f.Epoch != from.epoch {
			t.Fatalf("replayed %s as event %d after seq %d of %s", f.raw, k, from.seq, from.epoch)
		}
		replayed = append(replayed, f)
	}
	for f := (chatFrame{}); f.Type != "joined" || f.Username != name; {
		f = nextRecorded(t, c)
	}
	return n, replayed
}

// checkRecorded checks one sender's messages: each reached every member
// (the sender, its instance's listener, the other instance's) in one
// order, or reached nobody and its sender alone got an error frame. The only exceptions are messages sent in the
// instant the broker died: recorded with the reply lost, or delivered on
// one instance before the other's connection died.
func checkRecorded(t *testing.T, s *sender, self, local, remote *watched, stopped, resumed time.Time) string {
	t.Helper()
	n := s.count()
	instantOfStop := func(i int) bool {
		at := s.sentAt(i)
		return at.After(stopped.Add(-inFlight)) && at.Before(stopped.Add(inFlight))
	}
	outside := func(xs []int) []int {
		var out []int
		for _, i := range xs {
			if !instantOfStop(i) {
				out = append(out, i)
			}
		}
		return out
	}
	got, near := outside(self.contents(s.name)), 0
	for name, m := range map[string]*watched{"its own instance": local, "the other instance": remote} {
		if other := outside(m.contents(s.name)); !slices.Equal(other, got) {
			t.Errorf("%s's messages on %s: %d (%v...), back to the sender %d (%v...): want the same, in one order", s.name, name, len(other), head(other), len(got), head(got))
		}
	}
	if !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
		t.Errorf("%s's messages back: out of order or twice: %v", s.name, got)
	}
	delivered := map[int]bool{}
	for _, i := range self.contents(s.name) {
		delivered[i] = true
	}
	var missing int
	for i := range n {
		switch at := s.sentAt(i); {
		case delivered[i]:
		case instantOfStop(i):
			near++
		case at.Before(stopped) || at.After(resumed):
			t.Errorf("%s's message %d, sent %v after the stop, outside the outage, reached nobody", s.name, i, at.Sub(stopped).Round(time.Millisecond))
		default:
			missing++
		}
	}
	errs, late := self.errors(), self.errorsAfter(resumed.Add(inFlight))
	if missing > errs {
		t.Errorf("%s: %d messages reached nobody, and it got %d error frames", s.name, missing, errs)
	}
	if late > 0 {
		t.Errorf("%s got %d error frames after crossing resumed", s.name, late)
	}
	return fmt.Sprintf("%s sent %d: %d reached every member, %d nobody (%d error frames to the sender), %d in the instant of the stop",
		s.name, n, len(delivered), n-len(delivered), errs, near)
}

func head(xs []int) []int { return xs[:min(len(xs), 5)] }

// watched is a chat member whose frames a goroutine records as they come.
type watched struct {
	name   string
	c      *wstest.Client
	joined chan struct{} // closed when its own joined arrives
	stop   func()        // closes the connection once its reader has stopped

	mu     sync.Mutex
	frames []seen
	end    *wstest.Event
}

// seen is one frame a member received, and when.
type seen struct {
	at                      time.Time
	typ, user, content, err string
	seq                     uint64 // 0 unless recorded
	epoch                   string
}

func watch(t *testing.T, base, room, name string) *watched {
	t.Helper()
	m := &watched{name: name, joined: make(chan struct{}), c: wstest.Dial(t, roomURL(base, room, name, ""))}
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			// quit is checked before every read, not only after a quiet
			// 50 ms: with two senders at 20 ms a member may never have one,
			// and stop would wait for ever (ci4: 2.5 min, then the timeout).
			select {
			case <-quit:
				return
			default:
			}
			ev, ok := m.c.NextWithin(50 * time.Millisecond)
			if !ok {
				continue
			}
			if ev.Closed {
				m.mu.Lock()
				m.end = &ev
				m.mu.Unlock()
				return
			}
			var f struct {
				Seq                            uint64
				Type, Username, Content, Error string
				Epoch                          string
			}
			_ = json.Unmarshal(ev.Data, &f)
			m.mu.Lock()
			m.frames = append(m.frames, seen{time.Now(), f.Type, f.Username, f.Content, f.Error, f.Seq, f.Epoch})
			m.mu.Unlock()
			if f.Type == "joined" && f.Username == name {
				close(m.joined)
			}
		}
	}()
	m.stop = sync.OnceFunc(func() {
		close(quit)
		<-done
		m.c.Close()
	})
	t.Cleanup(m.stop)
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

// leave closes m's connection, and returns the last recorded event it
// received.
func (m *watched) leave() seen {
	m.stop()
	return m.last()
}

// last returns the last recorded event m received.
func (m *watched) last() seen {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := len(m.frames) - 1; i >= 0; i-- {
		if m.frames[i].seq != 0 {
			return m.frames[i]
		}
	}
	return seen{}
}

// typed reports whether m received a typing signal from user.
func (m *watched) typed(user string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, f := range m.frames {
		if f.typ == "typing" && f.user == user {
			return true
		}
	}
	return false
}

// errorsAfter counts the error frames m received after since.
func (m *watched) errorsAfter(since time.Time) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, f := range m.frames {
		if f.typ == "error" && f.at.After(since) {
			n++
		}
	}
	return n
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
	dir  string
	srv  *server.Server
}

func startNATS(t *testing.T) *natsServer {
	ns := &natsServer{t: t, port: server.RANDOM_PORT, dir: t.TempDir()}
	ns.start()
	ns.port = ns.srv.Addr().(*net.TCPAddr).Port
	t.Cleanup(ns.stop)
	return ns
}

func (ns *natsServer) start() {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: ns.port, NoLog: true, NoSigs: true, JetStream: true, StoreDir: ns.dir})
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
