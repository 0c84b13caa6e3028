package wsroom_test

import (
	"fmt"
	"iter"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/wstest"
)

// roomChat serves rooms: each connection joins the room of its path,
// announcing itself with its name, and publishes what it receives.
func roomChat(rooms *wsroom.Rooms[chatOut]) wsroom.Handler[chatIn, chatOut] {
	return func(c *wsroom.Conn[chatOut], msgs iter.Seq2[chatIn, error]) error {
		room := rooms.Room(c.Request().PathValue("room"))
		name := c.Request().URL.Query().Get("name")
		leave, err := room.Join(c, chatOut{Type: "joined", Content: name})
		if err != nil {
			return err
		}
		defer leave()
		for msg, err := range msgs {
			if err != nil {
				return err
			}
			if err := room.Publish(chatOut{Type: msg.Type, Content: name + ":" + msg.Content}); err != nil {
				return err
			}
		}
		return nil
	}
}

func TestPublishReachesEveryMemberOnlyInItsRoom(t *testing.T) {
	wstest.CheckGoroutines(t)
	rooms := wsroom.NewRooms[chatOut]()
	_, srv := serve(t, roomChat(rooms))
	a1 := wstest.Dial(t, srv.URL+"/ws/a?name=a1")
	a1.Message(t) // own joined
	a2 := wstest.Dial(t, srv.URL+"/ws/a?name=a2")
	a2.Message(t)
	a1.Message(t) // a2 joined
	b1 := wstest.Dial(t, srv.URL+"/ws/b?name=b1")
	b1.Message(t)

	a1.Send(t, chatIn{Type: "message", Content: "hello a"})
	for _, c := range []*wstest.Client{a1, a2} {
		var out chatOut
		c.JSON(t, &out)
		if out.Content != "a1:hello a" {
			t.Fatalf("member of a got %+v", out)
		}
	}
	b1.Send(t, chatIn{Type: "message", Content: "marker"})
	var out chatOut
	b1.JSON(t, &out)
	if out.Content != "b1:marker" {
		t.Fatalf("room b received %+v before its own marker: rooms leak", out)
	}
	if rooms.Len() != 2 {
		t.Fatalf("Rooms.Len = %d, want 2", rooms.Len())
	}
	var names []string
	for name, room := range rooms.All() {
		names = append(names, fmt.Sprintf("%s=%d", name, room.Len()))
	}
	slices.Sort(names)
	if fmt.Sprint(names) != "[a=2 b=1]" {
		t.Fatalf("rooms %v, want [a=2 b=1]", names)
	}
}

func TestEmptyRoomIsRemovedAndConnectionsLeaveWhenHandlerReturns(t *testing.T) {
	wstest.CheckGoroutines(t)
	rooms := wsroom.NewRooms[chatOut]()
	_, srv := serve(t, func(c *wsroom.Conn[chatOut], msgs iter.Seq2[chatIn, error]) error {
		if _, err := rooms.Room("solo").Subscribe(c); err != nil { // never unsubscribed by the handler
			return err
		}
		for range msgs {
		}
		return nil
	})
	c := wstest.Dial(t, srv.URL+"/ws/x")
	wstest.WaitFor(t, "the room to exist", func() bool { return rooms.Room("solo").Len() == 1 })
	c.Close()
	wstest.WaitFor(t, "the room to be removed", func() bool { return rooms.Len() == 0 })
	for name := range rooms.All() {
		t.Fatalf("room %q still listed", name)
	}
}

func TestMembersYieldsTheConnectionsInTheRoom(t *testing.T) {
	wstest.CheckGoroutines(t)
	rooms := wsroom.NewRooms[chatOut]()
	ids := make(chan uint64, 3)
	_, srv := serve(t, func(c *wsroom.Conn[chatOut], msgs iter.Seq2[chatIn, error]) error {
		leave, err := rooms.Room("p").Subscribe(c)
		if err != nil {
			return err
		}
		defer leave()
		ids <- c.ID()
		for range msgs {
		}
		return nil
	})
	for range 3 {
		wstest.Dial(t, srv.URL+"/ws/x")
	}
	want := []uint64{<-ids, <-ids, <-ids}
	unsub, _ := rooms.Room("p").SubscribeFunc(func(chatOut) {}) // funcs are not members
	defer unsub()
	var got []uint64
	for c := range rooms.Room("p").Members() {
		got = append(got, c.ID())
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) || rooms.Room("p").Len() != 4 {
		t.Fatalf("members %v (Len %d), want %v and Len 4", got, rooms.Room("p").Len(), want)
	}
}

// TestJoinerReceivesOwnAnnouncementFirst joins members one after another
// while two publishers flood the room: each joiner's first frame must be its
// own announcement.
func TestJoinerReceivesOwnAnnouncementFirst(t *testing.T) {
	wstest.CheckGoroutines(t)
	rooms := wsroom.NewRooms[chatOut]()
	_, srv := serve(t, roomChat(rooms), wsroom.WithOverflow(wsroom.OverflowDrop))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for p := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			room := rooms.Room("busy")
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
					_ = room.Publish(chatOut{Type: "flood", Seq: p*1e9 + i})
				}
			}
		}()
	}
	keep := wstest.Dial(t, srv.URL+"/ws/busy?name=keeper") // keeps the room alive
	_ = keep
	for i := range 30 {
		name := fmt.Sprint("joiner", i)
		c := wstest.Dial(t, srv.URL+"/ws/busy?name="+name)
		var first chatOut
		c.JSON(t, &first)
		if first.Type != "joined" || first.Content != name {
			t.Fatalf("joiner %d: first frame %+v, want its own joined", i, first)
		}
		c.Close()
	}
	close(stop)
	wg.Wait()
}

// TestMessagesOfOneSenderArriveInOrderWithNoneLost publishes thousands of
// messages from one goroutine to several real clients.
func TestMessagesOfOneSenderArriveInOrderWithNoneLost(t *testing.T) {
	wstest.CheckGoroutines(t)
	const n = 5000
	rooms := wsroom.NewRooms[chatOut]()
	// The burst is published at memory speed: size the queue to hold it,
	// so this test is about order and loss, not the overflow policy.
	_, srv := serve(t, roomChat(rooms), wsroom.WithSendQueue(n+16, 1<<20))
	var clients []*wstest.Client
	for i := range 4 {
		c := wstest.Dial(t, srv.URL+fmt.Sprintf("/ws/fifo?name=c%d", i))
		clients = append(clients, c)
	}
	wstest.WaitFor(t, "4 members", func() bool { return rooms.Room("fifo").Len() == 4 })
	room := rooms.Room("fifo")
	go func() {
		for i := 1; i <= n; i++ {
			_ = room.Publish(chatOut{Type: "seq", Seq: i})
		}
	}()
	for ci, c := range clients {
		next := 1
		for next <= n {
			var out chatOut
			c.JSON(t, &out)
			if out.Type != "seq" {
				continue // join announcements of later members
			}
			if out.Seq != next {
				t.Fatalf("client %d: got seq %d, want %d", ci, out.Seq, next)
			}
			next++
		}
	}
}

// TestSubscribeIsVisibleWhileRoomsAreRemovedConcurrently hammers a few room
// names with subscribe, publish and unsubscribe from many goroutines, so
// rooms are emptied, removed and recreated all the time, through fresh and
// stale handles. After each Subscribe returns, a publish through any handle
// must reach the subscriber.
func TestSubscribeIsVisibleWhileRoomsAreRemovedConcurrently(t *testing.T) {
	rooms := wsroom.NewRooms[int]()
	stale := make([]*wsroom.Room[int], 3)
	for i := range stale {
		stale[i] = rooms.Room(fmt.Sprint("r", i))
	}
	var missed, delivered atomic.Int64
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				name := fmt.Sprint("r", (g+i)%3)
				marker := g*1e6 + i
				var got atomic.Bool
				unsub, _ := rooms.Room(name).SubscribeFunc(func(m int) {
					if m == marker {
						got.Store(true)
					}
				})
				publisher := rooms.Room(name)
				if i%2 == 0 {
					publisher = stale[(g+i)%3]
				}
				_ = publisher.Publish(marker)
				if got.Load() {
					delivered.Add(1)
				} else {
					missed.Add(1)
				}
				unsub()
			}
		}()
	}
	wg.Wait()
	if missed.Load() != 0 {
		t.Fatalf("%d of %d publishes after Subscribe were missed", missed.Load(), missed.Load()+delivered.Load())
	}
	if rooms.Len() != 0 {
		t.Fatalf("Rooms.Len = %d after everyone left, want 0", rooms.Len())
	}
	for name := range rooms.All() {
		t.Fatalf("room %q left behind", name)
	}
}

func TestSubscribeFuncReceivesValuesAndUnsubscribeIsIdempotent(t *testing.T) {
	rooms := wsroom.NewRooms[string]()
	var got []string
	unsub, _ := rooms.Room("x").SubscribeFunc(func(m string) { got = append(got, m) })
	_ = rooms.Room("x").Publish("one")
	unsub()
	unsub()
	_ = rooms.Room("x").Publish("two")
	if !slices.Equal(got, []string{"one"}) || rooms.Len() != 0 {
		t.Fatalf("got %v, Len %d; want [one] and no room", got, rooms.Len())
	}
}

func TestPublishOfUnencodableValueReturnsError(t *testing.T) {
	wstest.CheckGoroutines(t)
	rooms := wsroom.NewRooms[any]()
	_, srv := serve(t, func(c *wsroom.Conn[any], msgs iter.Seq2[chatIn, error]) error {
		leave, err := rooms.Room("x").Subscribe(c)
		if err != nil {
			return err
		}
		defer leave()
		for range msgs {
		}
		return nil
	})
	wstest.Dial(t, srv.URL+"/ws/x")
	wstest.WaitFor(t, "a member", func() bool { return rooms.Room("x").Len() == 1 })
	if err := rooms.Room("x").Publish(make(chan int)); err == nil {
		t.Fatal("Publish of a channel returned nil, want an encoding error")
	}
}

func TestMaxRoomsRefusesNewRoomsButNotExistingOnes(t *testing.T) {
	rooms := wsroom.NewRooms[int](wsroom.WithMaxRooms(2))
	a, err := rooms.Room("a").SubscribeFunc(func(int) {})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rooms.Room("b").SubscribeFunc(func(int) {}); err != nil {
		t.Fatal(err)
	}
	if _, err := rooms.Room("c").SubscribeFunc(func(int) {}); err != wsroom.ErrTooManyRooms {
		t.Fatalf("third room: %v, want ErrTooManyRooms", err)
	}
	if _, err := rooms.Room("a").SubscribeFunc(func(int) {}); err != nil {
		t.Fatalf("joining an existing room at the cap: %v", err)
	}
	a()
	if s := rooms.Stats(); s.Rooms != 2 || s.Refused != 1 {
		t.Fatalf("stats %+v, want 2 rooms and 1 refusal", s)
	}
}
