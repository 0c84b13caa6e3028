package wsroom_test

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/wstest"
)

// dialMany dials n raw clients to url(i) at once and returns those that
// got in (by i, nil for the others), and the refusals.
func dialMany(t *testing.T, url func(i int) string, n int) (byIndex []*wstest.Raw, refused []*wstest.Refusal) {
	t.Helper()
	byIndex = make([]*wstest.Raw, n)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, _, err := wstest.RawDial(url(i), nil)
			var ref *wstest.Refusal
			switch {
			case err == nil:
				byIndex[i] = r
			case errors.As(err, &ref):
				mu.Lock()
				refused = append(refused, ref)
				mu.Unlock()
			default:
				t.Errorf("dial %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return byIndex, refused
}

// admitted returns the clients that got in.
func admitted(byIndex []*wstest.Raw) []*wstest.Raw {
	var in []*wstest.Raw
	for _, r := range byIndex {
		if r != nil {
			in = append(in, r)
		}
	}
	return in
}

// TestLimitMaxConnectionsUnderConcurrentDialsAndHostileHolders: the cap
// holds exactly under bursts of concurrent upgrades, while the places are
// taken by hostile clients that hold them silently, until the idle timeout
// takes the places back; every refusal is a 503 with Retry-After, counted
// in Stats.Refused.
func TestLimitMaxConnectionsUnderConcurrentDialsAndHostileHolders(t *testing.T) {
	wstest.CheckGoroutines(t)
	const limit, burst = 10, 60
	const interval, idle = 100 * time.Millisecond, 1500 * time.Millisecond
	a := newArena(t, arenaOptions{}, chatToOut, wsroom.WithMaxConnections(limit), wsroom.WithHeartbeat(interval, idle))
	lobby := func(int) string { return a.url }
	check := func(round string, in []*wstest.Raw, refused []*wstest.Refusal, wantRefused int64) {
		t.Helper()
		if len(in) != limit-1 {
			t.Fatalf("%s: %d of %d concurrent upgrades got in beside the witness, want %d", round, len(in), burst, limit-1)
		}
		for _, r := range refused {
			if r.Status != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" {
				t.Fatalf("%s: refused with %d, Retry-After %q; want 503 with Retry-After", round, r.Status, r.Header.Get("Retry-After"))
			}
		}
		if got := a.stats().Refused; got != wantRefused {
			t.Fatalf("%s: Stats.Refused = %d, want %d", round, got, wantRefused)
		}
	}

	// Silent holders take every place left; they answer nothing.
	all, refused := dialMany(t, lobby, burst)
	holders := admitted(all)
	check("holders", holders, refused, burst-limit+1)
	// While they hold, every upgrade is refused.
	more, refused2 := dialMany(t, lobby, burst)
	if n := len(admitted(more)); n != 0 {
		t.Fatalf("%d upgrades got in while the endpoint was full", n)
	}
	check("full", holders, refused2, 2*burst-limit+1)
	// The idle timeout takes the places back: each holder finds its
	// socket closed by the server.
	start := time.Now()
	var wg sync.WaitGroup
	for _, r := range holders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if e := r.ReadToEnd(wstest.Timeout, 1<<20); e.Err != nil || !e.AfterEOF {
				t.Errorf("a silent holder was not cut off: %v", e.Err)
			}
			r.Close()
		}()
	}
	wg.Wait()
	wstest.WaitFor(t, "the silent holders reclaimed", func() bool { return a.stats().Connections == 1 })
	reclaimed := time.Since(start)
	// Well-behaved clients get exactly the places freed.
	all, refused3 := dialMany(t, lobby, burst)
	good := admitted(all)
	check("after reclaim", good, refused3, 3*burst-2*(limit-1))
	for _, r := range good {
		closeRaw(t, r)
	}
	a.finish()
	t.Logf("limits: cap %d held under 3 bursts of %d concurrent upgrades: %d refused with 503 + Retry-After (Stats.Refused %d); %d silent holders reclaimed after %v",
		limit, burst, 3*burst-2*(limit-1), a.stats().Refused, len(holders), reclaimed.Round(10*time.Millisecond))
}

// TestLimitMaxRoomsUnderConcurrentJoins: clients racing to create more
// rooms than the cap allows get exactly the places left, the others are
// refused (the handler closes them with 1013); joining an existing room
// still works at the cap; once rooms empty, their places are free again.
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
	// At the cap, joining the lobby (which exists) still works.
	extra, _, err := wstest.RawDial(a.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	wstest.WaitFor(t, "the extra member in the lobby", func() bool { return a.rooms.Room("lobby").Len() == 3 })
	closeRaw(t, extra)
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
	t.Logf("limits: cap of %d rooms held under %d concurrent joins to new rooms: %d refused (RoomsStats.Refused %d), places freed when rooms emptied",
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
