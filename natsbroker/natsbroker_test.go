package natsbroker_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/brokertest"
	"github.com/wsroom/wsroom/internal/wstest"
	"github.com/wsroom/wsroom/natsbroker"
)

func TestBrokerPassesTheBrokerContract(t *testing.T) {
	wstest.CheckGoroutines(t)
	brokertest.Run(t, pairOn(newServer(t)))
}

func TestTwoInstancesJoinedByNATSFormOneRoom(t *testing.T) {
	wstest.CheckGoroutines(t)
	brokertest.TwoInstances(t, pairOn(newServer(t)), 3000)
}

func TestNATSOutageKeepsLocalDeliveryAndResubscribes(t *testing.T) {
	wstest.CheckGoroutines(t)
	ns := newServer(t)
	var conns []*nats.Conn
	pair := func(t *testing.T) (wsroom.Broker, wsroom.Broker) {
		a, b := connect(t, ns.url()), connect(t, ns.url())
		conns = append(conns, a, b)
		return newBroker(t, a), newBroker(t, b)
	}
	stop := func() {
		ns.stop()
		// The server is down once both clients know it: until then a
		// publish goes into a socket nobody reads, and is lost silently
		// (see the package doc).
		wstest.WaitFor(t, "clients notice the outage", func() bool {
			for _, nc := range conns {
				if nc.IsConnected() {
					return false
				}
			}
			return true
		})
	}
	brokertest.Outage(t, pair, stop, ns.start)
}

// During an outage Publish fails at once with ErrNotConnected, whatever
// the connection's reconnect buffer, and nothing published then arrives
// once the server is back; the subscription comes back by itself.
func TestPublishDuringOutageFailsAndNothingArrivesLate(t *testing.T) {
	wstest.CheckGoroutines(t)
	ns := newServer(t)
	ncA, ncB := connect(t, ns.url()), connect(t, ns.url())
	a, b := newBroker(t, ncA), newBroker(t, ncB)
	inB := brokertest.NewInbox(256)
	defer brokertest.Subscribe(t, b, "o", inB.Deliver)()

	ns.stop()
	wstest.WaitFor(t, "a notices the outage", func() bool { return !ncA.IsConnected() })
	// The broker learns of it from nats.go's status events, a moment
	// later; a publish in between would go to nats.go's reconnect buffer
	// (see the package doc). A publish to another room says when it has.
	wstest.WaitFor(t, "a's broker to know of the outage", func() bool {
		return errors.Is(a.Publish("probe", []byte(`{}`)), natsbroker.ErrNotConnected)
	})
	before := a.Stats()
	for i := range 10 {
		err := a.Publish("o", fmt.Appendf(nil, `{"during":%d}`, i))
		if !errors.Is(err, natsbroker.ErrNotConnected) {
			t.Fatalf("publish %d during the outage: %v, want ErrNotConnected", i, err)
		}
	}
	if s := a.Stats(); s.PublishErrors-before.PublishErrors != 10 || s.Published != before.Published {
		t.Fatalf("stats %+v after 10 failed publishes (before %+v)", s, before)
	}

	ns.start()
	brokertest.Await(t, a, "o", inB) // b's subscription is back, no user code
	if err := a.Publish("o", []byte(`{"after":true}`)); err != nil {
		t.Fatal(err)
	}
	if got := inB.Next(t); string(got) != `{"after":true}` {
		t.Fatalf("b got %s first after the outage: a publish made during it was delivered late", got)
	}
	if s := b.Stats(); s.Subscriptions != 1 {
		t.Fatalf("b holds %d subscriptions, want 1", s.Subscriptions)
	}
}

// Bytes from NATS that are not a wsroom publish are counted and dropped:
// no member sees them, and valid messages after them still arrive.
func TestBadBytesFromNATSAreCountedAndNeverReachMembers(t *testing.T) {
	wstest.CheckGoroutines(t)
	ns := newServer(t)
	a, b := natsPair(t, ns)
	B := brokertest.StartInstance(t, b)
	funcGot := make(chan brokertest.Msg, 1024)
	leaveFunc, err := B.Rooms.Room("bad").SubscribeFunc(func(m brokertest.Msg) { funcGot <- m })
	if err != nil {
		t.Fatal(err)
	}
	defer leaveFunc()
	c := B.Join(t, "bad")

	raw := connect(t, ns.url()) // a plain NATS client, not a wsroom process
	subject := b.Subject("bad")
	send := func(origin *string, payload string) {
		t.Helper()
		m := &nats.Msg{Subject: subject, Data: []byte(payload)}
		if origin != nil {
			m.Header = nats.Header{natsbroker.OriginHeader: {*origin}}
		}
		if err := raw.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	foreign, empty := "foreign", ""

	// SubscribeFunc returned once B's subscription was in effect, and c
	// joined the room it made: what raw sends from now on reaches both.
	rooms0, broker0 := B.Rooms.Stats(), b.Stats()

	send(nil, `{"from":"no header","seq":1}`)
	send(&empty, `{"from":"empty origin","seq":1}`)
	invalid := []string{
		`{"from":"truncated","se`,
		"{\"from\":\"\xff\xfe\",\"seq\":1}",
		"",
		"\x00\x01 garbage",
		`{"from":1,"seq":"not a Msg"}`,
		`[1,2,3]`,
	}
	for _, p := range invalid {
		send(&foreign, p)
	}
	const valid = `{"from":"foreign","seq":1}`
	send(&foreign, valid)
	if got := c.Message(t); string(got) != valid {
		t.Fatalf("member got %q first, want only the valid message %s", got, valid)
	}
	if m := recv(t, funcGot); m.From != "foreign" {
		t.Fatalf("func subscriber got %+v first", m)
	}
	const fromA = `{"from":"a","seq":2}`
	if err := a.Publish("bad", []byte(fromA)); err != nil {
		t.Fatal(err)
	}
	if got := c.Message(t); string(got) != fromA {
		t.Fatalf("member got %q, want %s", got, fromA)
	}
	if m := recv(t, funcGot); m.From != "a" {
		t.Fatalf("func subscriber got %+v", m)
	}

	rooms, broker := B.Rooms.Stats(), b.Stats()
	if d := broker.Malformed - broker0.Malformed; d != 2 {
		t.Errorf("broker dropped %d messages without an origin, want 2", d)
	}
	if d := broker.Received - broker0.Received; d != int64(len(invalid))+2 {
		t.Errorf("broker handed the room %d messages, want %d", d, len(invalid)+2)
	}
	if d := rooms.RemoteInvalid - rooms0.RemoteInvalid; d != int64(len(invalid)) {
		t.Errorf("rooms counted %d invalid, want %d", d, len(invalid))
	}
	if d := rooms.RemoteDelivered - rooms0.RemoteDelivered; d != 2 {
		t.Errorf("rooms delivered %d, want 2", d)
	}
}

// isClosed reports whether ch is closed now, without waiting.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// recv returns the next value from ch, failing the test after
// wstest.Timeout.
func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(wstest.Timeout):
		t.Fatal("nothing received within", wstest.Timeout)
	}
	var zero T
	return zero
}

// A Broker drops its own messages when NATS hands them back, and counts
// them.
func TestOwnMessagesAreDroppedAndCounted(t *testing.T) {
	wstest.CheckGoroutines(t)
	ns := newServer(t)
	a, b := natsPair(t, ns)
	inA := brokertest.NewInbox(256)
	defer brokertest.Subscribe(t, a, "e", inA.Deliver)()
	const n = 10
	for i := range n {
		if err := a.Publish("e", fmt.Appendf(nil, `{"own":%d}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	wstest.WaitFor(t, "a's own messages come back", func() bool { return a.Stats().Echoes >= n })
	if err := b.Publish("e", []byte(`{"from":"b"}`)); err != nil {
		t.Fatal(err)
	}
	if got := inA.Next(t); string(got) != `{"from":"b"}` {
		t.Fatalf("a got %s: its own message was delivered", got)
	}
	if s := a.Stats(); s.Echoes != n || s.Published != n || s.Malformed != 0 {
		t.Fatalf("a's stats %+v, want %d echoes dropped of %d published", s, n, n)
	}
}

// wireNames are room names that stress the subject encoding.
var wireNames = []string{
	"plain", "", "a.b", "a.*", "*", ">", "a.>", "a b", "tab\there", "new\nline", "cr\rlf",
	"ümlaut-房间", "a/b", "room:1", "wsroom", "[abc]", "a?c", "h*llo", "%", "%%", "%2A", "%25",
	"a%2Eb", "$SYS", "$SYS.>", "_INBOX.x", "\x00", "\x7f", "\xff\xfe", ".", "..", "a.", ".a",
	strings.Repeat("long", 100), strings.Repeat("x", 100_000), strings.Repeat(".", 5000),
}

// On the wire each room is exactly one token under the prefix, and the
// payload is exactly the bytes given to Publish.
func TestEveryRoomIsOneTokenOnTheWire(t *testing.T) {
	wstest.CheckGoroutines(t)
	ns := newServer(t)
	for _, prefix := range []string{natsbroker.DefaultPrefix, "app.ws"} {
		raw := connect(t, ns.url())
		one, err := raw.SubscribeSync(prefix + ".*")
		if err != nil {
			t.Fatal(err)
		}
		all, err := raw.SubscribeSync(prefix + ".>")
		if err != nil {
			t.Fatal(err)
		}
		if err := raw.Flush(); err != nil { // the server has the subscriptions
			t.Fatal(err)
		}
		a := newBroker(t, connect(t, ns.url()), natsbroker.WithPrefix(prefix))
		for i, name := range wireNames {
			if err := a.Publish(name, fmt.Appendf(nil, `{"room":%d}`, i)); err != nil {
				t.Fatalf("publish to %q: %v", name, err)
			}
		}
		seen := map[string]string{}
		for i, name := range wireNames {
			want := fmt.Sprintf(`{"room":%d}`, i)
			for _, sub := range []*nats.Subscription{one, all} {
				m, err := sub.NextMsg(wstest.Timeout)
				if err != nil {
					t.Fatalf("prefix %q, room %q: %v on %s", prefix, name, err, sub.Subject)
				}
				if m.Subject != a.Subject(name) || string(m.Data) != want || m.Header.Get(natsbroker.OriginHeader) == "" {
					t.Fatalf("prefix %q, room %q: got %s %q %v on %s, want %s %s with an origin",
						prefix, name, m.Subject, m.Data, m.Header, sub.Subject, a.Subject(name), want)
				}
			}
			subj := a.Subject(name)
			if !strings.HasPrefix(subj, prefix+".") || len(subj) > len(prefix)+1+200 {
				t.Fatalf("room %q: subject %q", name, subj)
			}
			if other, dup := seen[subj]; dup {
				t.Fatalf("rooms %q and %q share subject %q", other, name, subj)
			}
			seen[subj] = name
		}
	}
}

func TestPrefixesKeepServicesApart(t *testing.T) {
	wstest.CheckGoroutines(t)
	ns := newServer(t)
	pub, sub := connect(t, ns.url()), connect(t, ns.url())
	a1, a2 := newBroker(t, pub, natsbroker.WithPrefix("svc1")), newBroker(t, pub, natsbroker.WithPrefix("svc2"))
	b1, b2 := newBroker(t, sub, natsbroker.WithPrefix("svc1")), newBroker(t, sub, natsbroker.WithPrefix("svc2"))
	in1, in2 := brokertest.NewInbox(64), brokertest.NewInbox(64)
	defer brokertest.Subscribe(t, b1, "r", in1.Deliver)()
	defer brokertest.Subscribe(t, b2, "r", in2.Deliver)()
	if err := a1.Publish("r", []byte(`{"svc":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := a2.Publish("r", []byte(`{"svc":2}`)); err != nil {
		t.Fatal(err)
	}
	// One connection each way: svc1's message, had it reached svc2's
	// subscription, would be there before svc2's.
	if got := in2.Next(t); string(got) != `{"svc":2}` {
		t.Fatalf("svc2 got %s", got)
	}
	if got := in1.Next(t); string(got) != `{"svc":1}` {
		t.Fatalf("svc1 got %s", got)
	}
}

func TestNewRefusesWhatCannotWork(t *testing.T) {
	wstest.CheckGoroutines(t)
	ns := newServer(t)
	nc := connect(t, ns.url())
	if _, err := natsbroker.New(context.Background(), nil); err == nil {
		t.Error("New(nil) succeeded")
	}
	for _, p := range []string{"", ".", "a.", ".a", "a..b", "*", "a.*", ">", "a.>", "a b", "tab\t", "ü", "a\x00", strings.Repeat("p", 201)} {
		if _, err := natsbroker.New(context.Background(), nc, natsbroker.WithPrefix(p)); err == nil {
			t.Errorf("prefix %q accepted", p)
		}
	}
	for _, p := range []string{"wsroom", "app.ws", "$app", "a-b_c.d%e", strings.Repeat("p", 200)} {
		b, err := natsbroker.New(context.Background(), nc, natsbroker.WithPrefix(p))
		if err != nil {
			t.Errorf("prefix %q refused: %v", p, err)
			continue
		}
		if got := b.Subject("r"); got != p+".r" {
			t.Errorf("prefix %q: subject %q", p, got)
		}
	}
	for _, d := range []time.Duration{0, -time.Second} {
		if _, err := natsbroker.New(context.Background(), nc, natsbroker.WithSubscribeTimeout(d)); err == nil {
			t.Errorf("subscribe timeout %v accepted", d)
		}
	}
	for _, h := range []struct {
		size int
		ttl  time.Duration
	}{{0, time.Minute}, {-1, time.Minute}, {10, 0}, {10, -time.Second}} {
		if _, err := natsbroker.New(context.Background(), nc, natsbroker.WithHistory(h.size, h.ttl)); err == nil {
			t.Errorf("history of %d for %v accepted", h.size, h.ttl)
		}
	}
	closed := connect(t, ns.url())
	closed.Close()
	if _, err := natsbroker.New(context.Background(), closed); !errors.Is(err, nats.ErrConnectionClosed) {
		t.Errorf("New on a closed connection: %v", err)
	}
}

func TestCloseEndsSubscriptionsAndPublishing(t *testing.T) {
	wstest.CheckGoroutines(t)
	ns := newServer(t)
	nc := connect(t, ns.url())
	b := newBroker(t, nc)
	cancel1 := brokertest.Subscribe(t, b, "x", func([]byte) {})
	defer brokertest.Subscribe(t, b, "y", func([]byte) {})()
	if s := b.Stats(); s.Subscriptions != 2 || s.Rooms != 2 || nc.NumSubscriptions() != 2 {
		t.Fatalf("%d subscriptions of %d rooms (%d on the connection), want 2", s.Subscriptions, s.Rooms, nc.NumSubscriptions())
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if s := b.Stats(); s.Subscriptions != 0 || s.Rooms != 0 || nc.NumSubscriptions() != 0 {
		t.Fatalf("%d subscriptions of %d rooms (%d on the connection) after Close, want 0", s.Subscriptions, s.Rooms, nc.NumSubscriptions())
	}
	if nc.IsClosed() || !nc.IsConnected() {
		t.Fatalf("Close left the caller's connection %v, want it connected", nc.Status())
	}
	cancel1() // harmless after Close
	if err := b.Publish("x", []byte(`{}`)); !errors.Is(err, natsbroker.ErrClosed) || !errors.Is(err, wsroom.ErrBroker) {
		t.Fatalf("Publish after Close: %v, want ErrClosed wrapping wsroom.ErrBroker", err)
	}
	cancel, ready := b.Subscribe("z", func([]byte) {})
	cancel()
	if nc.NumSubscriptions() != 0 {
		t.Fatal("Subscribe after Close subscribed")
	}
	if !isClosed(ready) {
		t.Fatal("Subscribe after Close: ready not closed at once")
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if s := b.Stats(); s.PublishErrors != 1 || s.Published != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestClosedConnectionFailsPublishAndSubscribe(t *testing.T) {
	wstest.CheckGoroutines(t)
	ns := newServer(t)
	nc := connect(t, ns.url())
	b := newBroker(t, nc)
	nc.Close()
	if err := b.Publish("r", []byte(`{}`)); !errors.Is(err, nats.ErrConnectionClosed) {
		t.Fatalf("Publish on a closed connection: %v", err)
	}
	cancel, ready := b.Subscribe("r", func([]byte) {})
	cancel()
	if !isClosed(ready) {
		t.Fatal("refused subscription: ready not closed at once")
	}
	if s := b.Stats(); s.SubscribeErrors != 1 || s.PublishErrors != 1 || s.Subscriptions != 0 {
		t.Fatalf("stats %+v, want one publish and one subscribe error", s)
	}
}

func TestRoomHoldsASubscriptionOnlyWhileItHasMembers(t *testing.T) {
	wstest.CheckGoroutines(t)
	ns := newServer(t)
	nc := connect(t, ns.url())
	b := newBroker(t, nc)
	rooms := wsroom.NewRooms[string](wsroom.WithBroker(b))
	leave1, err1 := rooms.Room("r").SubscribeFunc(func(string) {})
	leave2, err2 := rooms.Room("r").SubscribeFunc(func(string) {})
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if s := b.Stats(); s.Subscriptions != 1 || nc.NumSubscriptions() != 1 {
		t.Fatalf("%d subscriptions (%d on the connection) with two members, want 1", s.Subscriptions, nc.NumSubscriptions())
	}
	leave1()
	leave2()
	if s := b.Stats(); s.Subscriptions != 0 || nc.NumSubscriptions() != 0 {
		t.Fatalf("%d subscriptions (%d on the connection) after the room emptied, want 0", s.Subscriptions, nc.NumSubscriptions())
	}
	if err := rooms.Room("r").Publish("to nobody here"); err != nil {
		t.Fatal(err)
	}
	if s := b.Stats(); s.Published != 1 || s.Subscriptions != 0 {
		t.Fatalf("stats %+v after publishing to an empty room", s)
	}
}

// Payload bytes go to NATS untouched, byte for byte.
func TestPayloadIsSentUnchanged(t *testing.T) {
	wstest.CheckGoroutines(t)
	ns := newServer(t)
	raw := connect(t, ns.url())
	b := newBroker(t, connect(t, ns.url()))
	sub, err := raw.SubscribeSync(b.Subject("p"))
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.Flush(); err != nil {
		t.Fatal(err)
	}
	payloads := [][]byte{[]byte(`{"a":"héllo \u263a <&>"}`), []byte("\r\n"), {}, bytes.Repeat([]byte{0xff}, 300)}
	for i, p := range payloads {
		if err := b.Publish("p", p); err != nil {
			t.Fatal(err)
		}
		if i == 0 { // one too large for the server, refused before it is sent
			if err := b.Publish("p", make([]byte, 2<<20)); !errors.Is(err, nats.ErrMaxPayload) {
				t.Fatalf("publishing 2 MiB: %v, want ErrMaxPayload", err)
			}
		}
	}
	for _, p := range payloads {
		m, err := sub.NextMsg(wstest.Timeout)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(m.Data, p) {
			t.Fatalf("NATS got %q, want %q", m.Data, p)
		}
	}
}

// A Broker can be made before NATS is reachable: publishes fail until the
// connection is up, and subscriptions made meanwhile start then.
func TestBrokerOnAConnectionNotYetConnected(t *testing.T) {
	wstest.CheckGoroutines(t)
	ns := newServer(t)
	ns.stop()
	nc, err := nats.Connect(ns.url(),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(10*time.Millisecond),
		nats.ReconnectJitter(0, 0),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if nc.IsConnected() {
		t.Fatal("connected with no server")
	}
	b := newBroker(t, nc)
	inB := brokertest.NewInbox(256)
	cancel, ready := b.Subscribe("early", inB.Deliver)
	defer cancel()
	if !isClosed(ready) {
		t.Fatal("Subscribe before the connection is up: ready not closed at once")
	}
	if err := b.Publish("early", []byte(`{}`)); !errors.Is(err, natsbroker.ErrNotConnected) {
		t.Fatalf("Publish before the connection is up: %v", err)
	}
	ns.start()
	a := newBroker(t, connect(t, ns.url()))
	brokertest.Await(t, a, "early", inB)
	if err := b.Publish("early", []byte(`{}`)); err != nil {
		t.Fatalf("Publish once connected: %v", err)
	}
}

// While nats.go is in a reconnect attempt against a server that accepts
// connections and never answers, it holds its connection lock for up to its
// connect Timeout: Publish must still fail at once.
func TestPublishFailsAtOnceDuringAReconnectAttemptThatHangs(t *testing.T) {
	wstest.CheckGoroutines(t)
	ns := newServer(t)
	a := newBroker(t, connect(t, ns.url()))
	if err := a.Publish("r", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	ns.stop()
	// A listener on the server's port that accepts and says nothing.
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", ns.port))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	defer func() {
		_ = ln.Close()
		for c := range accepted {
			_ = c.Close()
		}
	}()
	select {
	case c := <-accepted: // nats.go is now in its attempt, holding its lock
		defer c.Close()
	case <-time.After(wstest.Timeout):
		t.Fatal("nats.go never tried to reconnect")
	}
	for i := range 20 {
		began := time.Now()
		err := a.Publish("r", []byte(`{}`))
		if took := time.Since(began); !errors.Is(err, natsbroker.ErrNotConnected) || took > 100*time.Millisecond {
			t.Fatalf("publish %d during a hanging reconnect attempt: %v after %v, want ErrNotConnected at once", i, err, took)
		}
	}
}
