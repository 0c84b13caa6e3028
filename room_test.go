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

// Rooms (room.go, membership.go): who gets what is published, joining
// and leaving, and the cap on rooms.

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

// TestLimitMaxRoomsUnderConcurrentJoins: clients racing to create more
// rooms than the cap allows get exactly the places left, the others are
// refused with ErrTooManyRooms (the handler closes them with 1013);
// joining an existing room still works at the cap, and a room one member
// leaves keeps its place; once rooms empty, their places are free again.
func TestLimitMaxRoomsUnderConcurrentJoins(t *testing.T) {
	wstest.CheckGoroutines(t)
	const maxRooms, burst = 8, 40
	a := newArena(t, arenaOptions{rooms: []wsroom.RoomsOption{wsroom.WithMaxRooms(maxRooms)}}, chatToOut)
	base := a.srv.URL + "/ws/"
	// Every client gets its upgrade; those refused a room are closed.
	conns, _ := dialMany(t, func(i int) string { return fmt.Sprint(base, "room-", i) }, burst)
	wstest.WaitFor(t, "every client to have a room or be refused", func() bool {
		s := a.rooms.Stats()
		return s.Rooms == maxRooms && s.Refused == burst-maxRooms+1
	})
	var holders []*wstest.Raw
	refusedClose := 0
	for i, r := range conns {
		if r == nil {
			t.Fatalf("client %d was refused its upgrade", i)
		}
		if a.rooms.Room(fmt.Sprint("room-", i)).Len() == 1 {
			holders = append(holders, r)
			continue
		}
		e := r.ReadToEnd(wstest.Timeout, 1<<20)
		if e.Err != nil || e.Code != 1013 || e.Reason != wsroom.ErrTooManyRooms.Error() {
			t.Fatalf("refused a room: close %d %q, %v; want 1013 %q", e.Code, e.Reason, e.Err, wsroom.ErrTooManyRooms)
		}
		refusedClose++
		r.Close()
	}
	if len(holders) != maxRooms-1 || refusedClose != burst-maxRooms+1 {
		t.Fatalf("%d clients got a room and %d were refused, want %d and %d", len(holders), refusedClose, maxRooms-1, burst-maxRooms+1)
	}
	if s := a.rooms.Stats(); s.Rooms != maxRooms || s.Refused != burst-maxRooms+1 {
		t.Fatalf("rooms stats %+v, want %d rooms and %d refused", s, maxRooms, burst-maxRooms+1)
	}
	// At the cap, a new room is refused with ErrTooManyRooms itself.
	if _, err := a.rooms.Room("one-too-many").SubscribeFunc(func(chatOut) {}); err != wsroom.ErrTooManyRooms {
		t.Fatalf("a new room at the cap: %v, want ErrTooManyRooms", err)
	}
	// At the cap, joining the lobby (which exists) still works, and so
	// does joining a held room; when the extra members leave, the rooms
	// they leave behind keep their places.
	extra, _, err := wstest.RawDial(a.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	wstest.WaitFor(t, "the extra member in the lobby", func() bool { return a.rooms.Room("lobby").Len() == 3 })
	held := a.rooms.Room(fmt.Sprint("room-", slices.Index(conns, holders[0])))
	leave, err := held.SubscribeFunc(func(chatOut) {})
	if err != nil {
		t.Fatalf("joining an existing room at the cap: %v", err)
	}
	if n := held.Len(); n != 2 {
		t.Fatalf("the held room has %d members after a join at the cap, want 2", n)
	}
	leave()
	closeRaw(t, extra)
	wstest.WaitFor(t, "the extra member gone from the lobby", func() bool { return a.rooms.Room("lobby").Len() == 2 })
	if s := a.rooms.Stats(); s.Rooms != maxRooms || s.Refused != burst-maxRooms+2 {
		t.Fatalf("rooms stats %+v after the extra members left, want %d rooms and %d refused", s, maxRooms, burst-maxRooms+2)
	}
	// Rooms that empty give their places back.
	for _, r := range holders {
		closeRaw(t, r)
	}
	wstest.WaitFor(t, "only the lobby left", func() bool { return a.rooms.Len() == 1 })
	again, _ := dialMany(t, func(i int) string { return fmt.Sprint(base, "again-", i) }, maxRooms-1)
	wstest.WaitFor(t, "the new rooms", func() bool { return a.rooms.Len() == maxRooms })
	for _, r := range admitted(again) {
		closeRaw(t, r)
	}
	a.finish()
	t.Logf("limits: cap of %d rooms held under %d concurrent joins to new rooms: %d refused, then one SubscribeFunc (RoomsStats.Refused %d), places freed when rooms emptied",
		maxRooms, burst, refusedClose, a.rooms.Stats().Refused)
}

// TestLimitJoinsRacingToCreateTheSameRoomAtTheCap: subscribers that arrive
// together at a room that does not exist yet, when the registry has one
// place left, all join that one new room: none is refused, as none of them
// needs a room beyond the cap.
func TestLimitJoinsRacingToCreateTheSameRoomAtTheCap(t *testing.T) {
	const rounds, racers = 2000, 4
	rooms := wsroom.NewRooms[int](wsroom.WithMaxRooms(2))
	leaveOther, err := rooms.Room("other").SubscribeFunc(func(int) {})
	if err != nil {
		t.Fatal(err)
	}
	defer leaveOther()
	refusals := 0
	for round := range rounds {
		var wg sync.WaitGroup
		errs := make([]error, racers)
		leaves := make([]func(), racers)
		start := make(chan struct{})
		for i := range racers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				leaves[i], errs[i] = rooms.Room("shared").SubscribeFunc(func(int) {})
			}()
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				refusals++
				if refusals <= 3 {
					t.Errorf("round %d: racer %d: %v", round, i, err)
				}
			}
			leaves[i]()
		}
		if n := rooms.Len(); n != 1 {
			t.Fatalf("round %d: %d rooms after everyone left the shared one, want 1", round, n)
		}
	}
	if refusals > 0 {
		t.Errorf("%d of %d joins to one new room were refused with the cap not reached (RoomsStats.Refused %d)",
			refusals, rounds*racers, rooms.Stats().Refused)
	}
	t.Logf("limits: %d rounds of %d subscribers racing to create one room at the cap: %d refused", rounds, racers, refusals)
}

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
