package wsroom_test

import (
	"bytes"
	"errors"
	"iter"
	"sync"
	"testing"
	"time"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/brokertest"
	"github.com/wsroom/wsroom/internal/wstest"
)

func memoryPair(t *testing.T) (a, b wsroom.Broker) {
	m := brokertest.NewMemory()
	return m.Broker(), m.Broker()
}

func TestMemoryBrokerPassesTheBrokerContract(t *testing.T) {
	brokertest.Run(t, memoryPair)
}

func TestTwoInstancesJoinedByABrokerFormOneRoom(t *testing.T) {
	wstest.CheckGoroutines(t)
	brokertest.TwoInstances(t, memoryPair, 3000)
}

func TestBrokerOutageKeepsLocalDeliveryAndCountsErrors(t *testing.T) {
	wstest.CheckGoroutines(t)
	m := brokertest.NewMemory()
	brokertest.Outage(t, func(*testing.T) (wsroom.Broker, wsroom.Broker) { return m.Broker(), m.Broker() },
		func() { m.SetDown(true) }, func() { m.SetDown(false) })
}

func TestRoomHoldsABrokerSubscriptionOnlyWhileItHasMembers(t *testing.T) {
	m := brokertest.NewMemory()
	rooms := wsroom.NewRooms[string](wsroom.WithBroker(m.Broker()))
	if n := m.Subscriptions("r"); n != 0 {
		t.Fatalf("%d subscriptions before anyone joined", n)
	}
	leave1, _ := rooms.Room("r").SubscribeFunc(func(string) {})
	leave2, _ := rooms.Room("r").SubscribeFunc(func(string) {})
	if n := m.Subscriptions("r"); n != 1 {
		t.Fatalf("%d subscriptions with two members, want 1", n)
	}
	leave1()
	leave2()
	if n := m.Subscriptions("r"); n != 0 {
		t.Fatalf("%d subscriptions after the room emptied, want 0", n)
	}
	_ = rooms.Room("r").Publish("to nobody") // no members: no subscription made
	if n := m.Subscriptions("r"); n != 0 {
		t.Fatalf("publishing to an empty room subscribed it")
	}
}

// recordingBroker keeps what it is asked to publish.
type recordingBroker struct {
	mu  sync.Mutex
	got [][]byte
}

func (r *recordingBroker) Publish(room string, p []byte) error {
	r.mu.Lock()
	r.got = append(r.got, append([]byte(nil), p...))
	r.mu.Unlock()
	return nil
}

func (r *recordingBroker) Subscribe(string, func([]byte)) (func(), <-chan struct{}) {
	return func() {}, nil // nil: ready at once
}

func TestBrokerGetsTheBytesLocalMembersGet(t *testing.T) {
	wstest.CheckGoroutines(t)
	rb := &recordingBroker{}
	rooms := wsroom.NewRooms[chatOut](wsroom.WithBroker(rb))
	_, srv := serve(t, member(rooms))
	c := wstest.Dial(t, srv.URL+"/ws/bytes")
	wstest.WaitFor(t, "a member", func() bool { return rooms.Room("bytes").Len() == 1 })
	if err := rooms.Room("bytes").Publish(chatOut{Type: "t", Content: "<&> ü"}); err != nil {
		t.Fatal(err)
	}
	local := c.Message(t)
	rb.mu.Lock()
	defer rb.mu.Unlock()
	if len(rb.got) != 1 || !bytes.Equal(rb.got[0], local) {
		t.Fatalf("broker got %q, local member got %q: want the same bytes once", rb.got, local)
	}
}

func TestInvalidBytesFromTheBrokerAreCountedAndDropped(t *testing.T) {
	wstest.CheckGoroutines(t)
	m := brokertest.NewMemory()
	rooms := wsroom.NewRooms[chatOut](wsroom.WithBroker(m.Broker()))
	funcGot := make(chan chatOut, 16)
	leave, _ := rooms.Room("in").SubscribeFunc(func(o chatOut) { funcGot <- o })
	defer leave()
	_, srv := serve(t, member(rooms))
	c := wstest.Dial(t, srv.URL+"/ws/in")
	wstest.WaitFor(t, "a member", func() bool { return rooms.Room("in").Len() == 2 })
	bad := [][]byte{
		[]byte("not json"),
		[]byte(`{"type":"t","content":"trunc`),
		[]byte("{\"type\":\"\xff\xfe\"}"),
		{},
	}
	for _, p := range bad {
		m.Inject("in", p)
	}
	m.Inject("in", []byte(`{"type":"ok"}`))
	if got := string(c.Message(t)); got != `{"type":"ok"}` {
		t.Fatalf("member got %q first, want only the valid message", got)
	}
	if o := <-funcGot; o.Type != "ok" {
		t.Fatalf("func subscriber got %+v", o)
	}
	s := rooms.Stats()
	if s.RemoteInvalid != int64(len(bad)) || s.RemoteDelivered != 1 {
		t.Fatalf("stats %+v, want %d invalid and 1 delivered", s, len(bad))
	}
}

// gatedBroker confirms each subscription only when the test says so, and
// fails every publish while down is set.
type gatedBroker struct {
	mu    sync.Mutex
	ready map[string]chan struct{}
	down  bool
}

var errGatedDown = errors.New("gated: down")

func (g *gatedBroker) Publish(string, []byte) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.down {
		return errGatedDown
	}
	return nil
}

func (g *gatedBroker) Subscribe(room string, _ func([]byte)) (func(), <-chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	ch := make(chan struct{})
	g.ready[room] = ch
	return func() {}, ch
}

// subscribed reports whether a room has subscribed on the broker.
func (g *gatedBroker) subscribed(room string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.ready[room] != nil
}

func (g *gatedBroker) confirm(room string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	close(g.ready[room])
}

func TestJoinWaitsForTheBrokerToConfirmTheSubscription(t *testing.T) {
	g := &gatedBroker{ready: map[string]chan struct{}{}}
	rooms := wsroom.NewRooms[string](wsroom.WithBroker(g))
	joined := make(chan error, 1)
	go func() {
		_, err := rooms.Room("r").SubscribeFunc(func(string) {})
		joined <- err
	}()
	wstest.WaitFor(t, "the room to subscribe on the broker", func() bool { return g.subscribed("r") })
	select {
	case err := <-joined:
		t.Fatalf("SubscribeFunc returned (%v) before the broker confirmed", err)
	case <-time.After(100 * time.Millisecond):
	}
	// Until then the member is not visible: no publish can reach it yet.
	if n := rooms.Room("r").Len(); n != 0 {
		t.Fatalf("Len %d while the broker has not confirmed, want 0", n)
	}
	// A second member of the same room waits for the same confirmation
	// (or, arriving after it, does not wait at all).
	second := make(chan error, 1)
	go func() {
		_, err := rooms.Room("r").SubscribeFunc(func(string) {})
		second <- err
	}()
	confirmed := time.Now()
	g.confirm("r")
	for _, ch := range []chan error{joined, second} {
		select {
		case err := <-ch:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(wstest.Timeout):
			t.Fatal("SubscribeFunc did not return once the broker confirmed")
		}
	}
	if took := time.Since(confirmed); took >= wsroom.BrokerReadyTimeout {
		t.Fatalf("members returned %v after the confirmation: they waited for the timeout instead", took)
	}
	if n := rooms.Room("r").Len(); n != 2 {
		t.Fatalf("Len %d, want 2", n)
	}
}

func TestJoinReturnsAfterBrokerReadyTimeoutWhenTheBrokerNeverConfirms(t *testing.T) {
	g := &gatedBroker{ready: map[string]chan struct{}{}}
	rooms := wsroom.NewRooms[string](wsroom.WithBroker(g))
	start := time.Now()
	leave, err := rooms.Room("never").SubscribeFunc(func(string) {})
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	defer leave()
	if took < wsroom.BrokerReadyTimeout || took > wsroom.BrokerReadyTimeout+wstest.Timeout {
		t.Fatalf("returned after %v, want BrokerReadyTimeout (%v)", took, wsroom.BrokerReadyTimeout)
	}
	if rooms.Room("never").Len() != 1 {
		t.Fatal("not in the room")
	}
}

func TestALateJoinerWaitsNoLongerThanTheRoomsFirst(t *testing.T) {
	g := &gatedBroker{ready: map[string]chan struct{}{}}
	rooms := wsroom.NewRooms[string](wsroom.WithBroker(g))
	subscribed := time.Now()
	first := make(chan error, 1)
	go func() {
		_, err := rooms.Room("late").SubscribeFunc(func(string) {})
		first <- err
	}()
	wstest.WaitFor(t, "the room to subscribe on the broker", func() bool { return g.subscribed("late") })
	time.Sleep(wsroom.BrokerReadyTimeout / 2) // the scenario: the second member arrives half-way
	if _, err := rooms.Room("late").SubscribeFunc(func(string) {}); err != nil {
		t.Fatal(err)
	}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	// Both are let in when the room gives up on the broker, BrokerReadyTimeout
	// after it subscribed: the late one does not start a timeout of its own.
	if took := time.Since(subscribed); took > wsroom.BrokerReadyTimeout+wsroom.BrokerReadyTimeout/4 {
		t.Fatalf("the late member was let in %v after the room subscribed, want about %v", took, wsroom.BrokerReadyTimeout)
	}
}

func TestBrokerErrorsNeverFailJoinAndPublishSaysErrBroker(t *testing.T) {
	wstest.CheckGoroutines(t)
	g := &gatedBroker{ready: map[string]chan struct{}{}, down: true}
	rooms := wsroom.NewRooms[chatOut](wsroom.WithBroker(g))
	joinErr := make(chan error, 1)
	publishErr := make(chan error, 1)
	_, srv := serve(t, func(c *wsroom.Conn[chatOut], msgs iter.Seq2[chatIn, error]) error {
		room := rooms.Room("down")
		leave, err := room.Join(c, chatOut{Type: "joined"})
		joinErr <- err
		if err != nil {
			return err
		}
		defer leave()
		for msg, err := range msgs {
			if err != nil {
				return err
			}
			err := room.Publish(chatOut{Type: msg.Type, Content: msg.Content})
			publishErr <- err
			if errors.Is(err, wsroom.ErrBroker) {
				_ = c.Send(chatOut{Type: "error", Content: "not delivered elsewhere"})
			} else if err != nil {
				return err
			}
		}
		return nil
	})
	c := wstest.Dial(t, srv.URL+"/ws/down")
	wstest.WaitFor(t, "the room to subscribe on the broker", func() bool { return g.subscribed("down") })
	g.confirm("down")
	if err := <-joinErr; err != nil {
		t.Fatalf("Join failed while the broker is down: %v", err)
	}
	if got := string(c.Message(t)); got != `{"type":"joined"}` {
		t.Fatalf("got %s, want the joined announcement", got)
	}
	c.Send(t, chatIn{Type: "message", Content: "hi"})
	err := <-publishErr
	if !errors.Is(err, wsroom.ErrBroker) || !errors.Is(err, errGatedDown) {
		t.Fatalf("Publish returned %v, want an error wrapping ErrBroker and the broker's error", err)
	}
	if got := string(c.Message(t)); got != `{"type":"message","content":"hi"}` {
		t.Fatalf("got %s, want the local delivery first", got)
	}
	if got := string(c.Message(t)); got != `{"type":"error","content":"not delivered elsewhere"}` {
		t.Fatalf("got %s, want the handler's error frame", got)
	}
	if n := rooms.Stats().BrokerErrors; n != 2 {
		t.Fatalf("BrokerErrors %d, want 2 (the announcement and the message)", n)
	}
}
