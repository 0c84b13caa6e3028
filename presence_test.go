package wsroom_test

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/wstest"
)

// presOut is what the presence tests' members receive.
type presOut struct {
	Type string `json:"type"`
	User string `json:"user"`
}

// presenceHooks are called by presenceServer's handler around Join and
// leave, for tests that check what the snapshot shows against them.
type presenceHooks struct {
	joining, joined, leaving, left func(user string)
}

// presenceServer serves rooms at /ws/{room}?user=NAME&meta=JSON: a member
// joins As user (with meta, if given) announcing "joined", with "left" as
// its leave message, and publishes what it sends. A Join that fails sends
// the error's text as a "refused" message and closes with 4000.
func presenceServer(t testing.TB, rooms *wsroom.Rooms[presOut], hooks presenceHooks) string {
	t.Helper()
	call := func(f func(string), user string) {
		if f != nil {
			f(user)
		}
	}
	_, srv := serve(t, func(c *wsroom.Conn[presOut], msgs iter.Seq2[presOut, error]) error {
		room := rooms.Room(c.Request().PathValue("room"))
		q := c.Request().URL.Query()
		user := q.Get("user")
		var meta any
		if m := q.Get("meta"); m != "" {
			meta = json.RawMessage(m)
		}
		call(hooks.joining, user)
		leave, err := room.Join(c, presOut{Type: "joined", User: user},
			wsroom.As(user, meta), wsroom.LeaveWith(presOut{Type: "left", User: user}))
		if err != nil {
			_ = c.Send(presOut{Type: "refused", User: err.Error()})
			return &wsroom.CloseError{Code: 4000, Reason: "refused"}
		}
		call(hooks.joined, user)
		defer func() {
			call(hooks.leaving, user)
			leave()
			call(hooks.left, user)
		}()
		for msg, err := range msgs {
			if err != nil {
				return err
			}
			_ = room.Publish(msg)
		}
		return nil
	}, wsroom.WithRateLimit(0, 0))
	return srv.URL
}

// dialAs connects user to room and waits for its own "joined".
func dialAs(t testing.TB, base, room, user string) *wstest.Client {
	t.Helper()
	c := wstest.Dial(t, base+"/ws/"+room+"?"+url.Values{"user": {user}}.Encode())
	if m := nextPres(t, c); m != (presOut{Type: "joined", User: user}) {
		t.Fatalf("%s's first frame is %+v, not its own joined", user, m)
	}
	return c
}

func nextPres(t testing.TB, c *wstest.Client) presOut {
	t.Helper()
	var m presOut
	c.JSON(t, &m)
	return m
}

// who returns room's presence as "key:connections" strings, sorted.
func who(t testing.TB, rooms *wsroom.Rooms[presOut], room string) string {
	t.Helper()
	p, err := rooms.Room(room).Presence(context.Background())
	if err != nil {
		t.Fatalf("Presence: %v", err)
	}
	var out []string
	for e := range p.All() {
		out = append(out, fmt.Sprintf("%s:%d", e.Key, e.Connections))
	}
	return strings.Join(out, " ")
}

func TestTwoTabsOfOneUserAreOneEntryWithACount(t *testing.T) {
	wstest.CheckGoroutines(t)
	rooms := wsroom.NewRooms[presOut]()
	base := presenceServer(t, rooms, presenceHooks{})
	tab1 := dialAs(t, base, "r", "ann")
	tab2 := dialAs(t, base, "r", "ann")
	bob := dialAs(t, base, "r", "bob")
	if got := who(t, rooms, "r"); got != "ann:2 bob:1" {
		t.Fatalf("presence %q, want ann:2 bob:1", got)
	}
	p, _ := rooms.Room("r").Presence(context.Background())
	if p.Len() != 2 || p.Connections() != 3 {
		t.Fatalf("Len %d, Connections %d; want 2 and 3", p.Len(), p.Connections())
	}
	tab1.Close()
	if m := nextPres(t, bob); m != (presOut{Type: "left", User: "ann"}) {
		t.Fatalf("bob got %+v, want ann's left", m)
	}
	if got := who(t, rooms, "r"); got != "ann:1 bob:1" {
		t.Fatalf("presence %q after a tab closed, want ann:1 bob:1", got)
	}
	tab2.Close()
	if m := nextPres(t, bob); m != (presOut{Type: "left", User: "ann"}) {
		t.Fatalf("bob got %+v, want ann's left", m)
	}
	if got := who(t, rooms, "r"); got != "bob:1" {
		t.Fatalf("presence %q after both tabs closed, want bob:1", got)
	}
	if _, ok := p.Get("ann"); !ok {
		t.Fatal("a snapshot changed after it was taken")
	}
	bob.Close()
	wstest.WaitFor(t, "the room to empty", func() bool { return rooms.Stats().Present == 0 })
}

func TestMetaIsTheFirstConnectionsAndSurvivesLaterTabs(t *testing.T) {
	rooms := wsroom.NewRooms[presOut]()
	base := presenceServer(t, rooms, presenceHooks{})
	dial := func(meta string) *wstest.Client {
		c := wstest.Dial(t, base+"/ws/m?"+url.Values{"user": {"ann"}, "meta": {meta}}.Encode())
		nextPres(t, c)
		return c
	}
	first := dial(`{"device":"laptop"}`)
	dial(`{"device":"phone"}`)
	p, err := rooms.Room("m").Presence(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if e, _ := p.Get("ann"); e.Connections != 2 || string(e.Meta) != `{"device":"laptop"}` {
		t.Fatalf("entry %+v (meta %s), want 2 connections and the laptop's meta", e, e.Meta)
	}
	first.Close()
	wstest.WaitFor(t, "the laptop to leave", func() bool {
		p, _ := rooms.Room("m").Presence(context.Background())
		e, _ := p.Get("ann")
		return e.Connections == 1 && string(e.Meta) == `{"device":"phone"}`
	})
}

// TestPresenceIsExactWhileMembersJoinAndLeave: while members join and
// leave at once, every snapshot holds every member whose Join returned
// before it was taken (and that has not begun to leave), and none that
// had not begun to join or had finished leaving.
func TestPresenceIsExactWhileMembersJoinAndLeave(t *testing.T) {
	wstest.CheckGoroutines(t)
	const workers, rounds = 8, 15
	log := newJoinLog()
	rooms := wsroom.NewRooms[presOut]()
	base := presenceServer(t, rooms, presenceHooks{
		joining: log.mark(log.started), joined: log.mark(log.returned),
		leaving: log.mark(log.leaving), left: log.mark(log.gone),
	})
	stop, checked := make(chan struct{}), make(chan error, 1)
	go func() {
		for n := 0; ; n++ {
			select {
			case <-stop:
				checked <- fmt.Errorf("%d snapshots checked", n)
				return
			default:
			}
			if err := log.check(rooms.Room("x")); err != nil {
				checked <- err
				return
			}
		}
	}()
	var wg sync.WaitGroup
	failures := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				if err := joinAndLeave(base, "x", fmt.Sprintf("u%d-%d", w, r)); err != nil {
					failures <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(failures)
	for err := range failures {
		t.Fatal(err)
	}
	wstest.WaitFor(t, "every member to leave", func() bool { return rooms.Stats().Present == 0 })
	close(stop)
	err := <-checked
	if !strings.HasSuffix(err.Error(), "snapshots checked") {
		t.Fatal(err)
	}
	t.Log(err)
}

// joinLog records which members began and ended Join and leave.
type joinLog struct {
	mu                               sync.Mutex
	started, returned, leaving, gone map[string]bool
}

func newJoinLog() *joinLog {
	return &joinLog{started: map[string]bool{}, returned: map[string]bool{}, leaving: map[string]bool{}, gone: map[string]bool{}}
}

// mark returns a hook that adds its user to set.
func (l *joinLog) mark(set map[string]bool) func(string) {
	return func(u string) {
		l.mu.Lock()
		set[u] = true
		l.mu.Unlock()
	}
}

// minus returns the users in keep and not in drop.
func (l *joinLog) minus(keep, drop map[string]bool) map[string]bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]bool{}
	for u := range keep {
		if !drop[u] {
			out[u] = true
		}
	}
	return out
}

// check takes one snapshot of room and says what it got wrong: a member
// that had not begun to join by its end or had left before it began, or
// a miss of one whose Join returned before it began and that had not
// begun to leave by its end.
func (l *joinLog) check(room *wsroom.Room[presOut]) error {
	joinedBefore, goneBefore := l.minus(l.returned, nil), l.minus(l.gone, nil)
	p, err := room.Presence(context.Background())
	if err != nil {
		return err
	}
	mayHave, leavingAfter := l.minus(l.started, goneBefore), l.minus(l.leaving, nil)
	have := map[string]bool{}
	for e := range p.All() {
		have[e.Key] = true
		if !mayHave[e.Key] {
			return fmt.Errorf("snapshot shows %s, which had not begun to join or had left", e.Key)
		}
	}
	for u := range joinedBefore {
		if !have[u] && !leavingAfter[u] {
			return fmt.Errorf("snapshot misses %s, whose Join had returned", u)
		}
	}
	return nil
}

// TestJoinAndLeaveAnnouncementsMatchThePresence: a member receiving
// another's "joined" finds it present, and receiving its "left" finds it
// gone; the leaver never receives its own "left".
func TestJoinAndLeaveAnnouncementsMatchThePresence(t *testing.T) {
	rooms := wsroom.NewRooms[presOut]()
	base := presenceServer(t, rooms, presenceHooks{})
	checks := make(chan string, 16)
	unsubscribe, err := rooms.Room("a").SubscribeFunc(func(m presOut) {
		p, err := rooms.Room("a").Presence(context.Background())
		_, present := p.Get(m.User)
		switch {
		case err != nil:
			checks <- err.Error()
		case m.Type == "joined" && !present:
			checks <- m.User + " announced joined but not present"
		case m.Type == "left" && present:
			checks <- m.User + " announced left but still present"
		default:
			checks <- "ok"
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer unsubscribe()
	ann := dialAs(t, base, "a", "ann")
	bob := dialAs(t, base, "a", "bob")
	if m := nextPres(t, ann); m != (presOut{Type: "joined", User: "bob"}) {
		t.Fatalf("ann got %+v, want bob's joined", m)
	}
	bob.Close()
	if m := nextPres(t, ann); m != (presOut{Type: "left", User: "bob"}) {
		t.Fatalf("ann got %+v, want bob's left", m)
	}
	for range 3 {
		if got := <-checks; got != "ok" {
			t.Fatal(got)
		}
	}
	ann.Close()
	if got := <-checks; got != "ok" {
		t.Fatal(got)
	}
}

func TestPresenceBoundsRefuseTheJoinAndDisturbNobody(t *testing.T) {
	rooms := wsroom.NewRooms[presOut](wsroom.WithPresenceLimits(2, 100))
	base := presenceServer(t, rooms, presenceHooks{})
	ann := dialAs(t, base, "b", "ann")
	dialAs(t, base, "b", "bob")
	dialAs(t, base, "b", "ann") // a second tab of a present key: no new entry
	refused := func(q url.Values) string {
		t.Helper()
		c := wstest.Dial(t, base+"/ws/b?"+q.Encode())
		m := nextPres(t, c)
		if ev := c.Closed(t); m.Type != "refused" || ev.Code != 4000 {
			t.Fatalf("got %+v then close %d, want a refusal", m, ev.Code)
		}
		return m.User
	}
	if got := refused(url.Values{"user": {"cat"}}); !strings.Contains(got, wsroom.ErrPresenceFull.Error()) {
		t.Fatalf("a third key was refused with %q, want ErrPresenceFull", got)
	}
	big := url.Values{"user": {"ann"}, "meta": {`{"bio":"` + strings.Repeat("x", 100) + `"}`}}
	if got := refused(big); !strings.Contains(got, wsroom.ErrPresenceEntryTooLarge.Error()) {
		t.Fatalf("oversized meta was refused with %q, want ErrPresenceEntryTooLarge", got)
	}
	if got := refused(url.Values{"user": {""}}); !strings.Contains(got, "non-empty") {
		t.Fatalf("an empty key was refused with %q", got)
	}
	if got := who(t, rooms, "b"); got != "ann:2 bob:1" {
		t.Fatalf("presence %q after the refusals, want ann:2 bob:1", got)
	}
	// Ann saw the joins that were let in, then her own note: no refused
	// member was announced.
	if m := nextPres(t, ann); m != (presOut{Type: "joined", User: "bob"}) {
		t.Fatalf("ann got %+v, want bob's joined", m)
	}
	if m := nextPres(t, ann); m != (presOut{Type: "joined", User: "ann"}) {
		t.Fatalf("ann got %+v, want her second tab's joined", m)
	}
	ann.Send(t, presOut{Type: "note", User: "ann"})
	if m := nextPres(t, ann); m != (presOut{Type: "note", User: "ann"}) {
		t.Fatalf("ann got %+v after the refusals, want her note: a refused join was announced", m)
	}
}

func TestLeaveWithOfAnotherTypeIsRefused(t *testing.T) {
	rooms := wsroom.NewRooms[presOut]()
	errs := make(chan error, 1)
	_, srv := serve(t, func(c *wsroom.Conn[presOut], _ iter.Seq2[presOut, error]) error {
		_, err := rooms.Room("t").Join(c, presOut{Type: "joined"}, wsroom.As("ann", nil), wsroom.LeaveWith("left"))
		errs <- err
		return nil
	})
	c := wstest.Dial(t, srv.URL+"/ws/t")
	defer c.Close()
	if err := <-errs; err == nil || !strings.Contains(err.Error(), "LeaveWith(string)") {
		t.Fatalf("Join returned %v, want a LeaveWith type error", err)
	}
	if rooms.Len() != 0 || rooms.Stats().Present != 0 {
		t.Fatal("a refused Join left a room or an entry behind")
	}
}

func TestPresenceInARoomWithHistory(t *testing.T) {
	rooms := wsroom.NewRooms[presOut](wsroom.WithHistory(100, time.Minute))
	base := presenceServer(t, rooms, presenceHooks{})
	ann := dialAs(t, base, "h", "ann")
	bob := dialAs(t, base, "h", "bob")
	if got := who(t, rooms, "h"); got != "ann:1 bob:1" {
		t.Fatalf("presence %q, want ann:1 bob:1", got)
	}
	bob.Close()
	var m struct {
		Seq  int    `json:"seq"`
		Type string `json:"type"`
		User string `json:"user"`
	}
	ann.JSON(t, &m) // bob's joined
	ann.JSON(t, &m)
	if m.Type != "left" || m.User != "bob" || m.Seq != 3 {
		t.Fatalf("ann got %+v, want bob's left recorded at seq 3", m)
	}
	if got := who(t, rooms, "h"); got != "ann:1" {
		t.Fatalf("presence %q, want ann:1", got)
	}
}

// joinAndLeave connects user to room, waits for its own "joined", and
// closes the connection; for goroutines other than the test's.
func joinAndLeave(base, room, user string) error {
	c, _, err := wstest.TryDial(base + "/ws/" + room + "?" + url.Values{"user": {user}}.Encode())
	if err != nil {
		return err
	}
	defer c.Close()
	ev, ok := c.NextWithin(wstest.Timeout)
	var m presOut
	if !ok || json.Unmarshal(ev.Data, &m) != nil || m != (presOut{Type: "joined", User: user}) {
		return fmt.Errorf("%s's first frame: %q, want its joined", user, ev.Data)
	}
	return nil
}

// TestLeavingIsAnnouncedOnceWhicheverWayTheMemberLeaves: a member whose
// handler returns without calling leave, one that calls it twice, and one
// with LeaveWith but no key are each announced gone exactly once, after
// they are out of the presence.
func TestLeavingIsAnnouncedOnceWhicheverWayTheMemberLeaves(t *testing.T) {
	wstest.CheckGoroutines(t)
	rooms := wsroom.NewRooms[presOut]()
	_, srv := serve(t, func(c *wsroom.Conn[presOut], msgs iter.Seq2[presOut, error]) error {
		room := rooms.Room("w")
		user := c.Request().URL.Query().Get("user")
		opts := []wsroom.JoinOption{wsroom.LeaveWith(presOut{Type: "left", User: user})}
		if user != "anonymous" {
			opts = append(opts, wsroom.As(user, nil))
		}
		leave, err := room.Join(c, presOut{Type: "joined", User: user}, opts...)
		if err != nil {
			return err
		}
		for _, err := range msgs {
			if err != nil {
				return err
			}
		}
		if user == "twice" {
			leave()
			leave()
		}
		return nil // the others leave as the handler returns
	})
	watcher := dialAs(t, srv.URL, "w", "watcher")
	for _, user := range []string{"returns", "twice", "anonymous"} {
		c := dialAs(t, srv.URL, "w", user)
		if m := nextPres(t, watcher); m != (presOut{Type: "joined", User: user}) {
			t.Fatalf("watcher got %+v, want %s's joined", m, user)
		}
		c.Close()
		if m := nextPres(t, watcher); m != (presOut{Type: "left", User: user}) {
			t.Fatalf("watcher got %+v, want %s's left", m, user)
		}
		if got := who(t, rooms, "w"); got != "watcher:1" {
			t.Fatalf("presence %q after %s left, want watcher:1", got, user)
		}
	}
	if err := rooms.Room("w").Publish(presOut{Type: "marker"}); err != nil {
		t.Fatal(err)
	}
	if m := nextPres(t, watcher); m.Type != "marker" {
		t.Fatalf("watcher got %+v after the last left, want the marker: a leave was announced twice", m)
	}
}
