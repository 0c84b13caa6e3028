package wsroom_test

import (
	"bytes"
	"sync"
	"testing"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/brokertest"
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

func (r *recordingBroker) Subscribe(string, func([]byte)) func() { return func() {} }

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
