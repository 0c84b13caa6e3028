package brokertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/url"
	"testing"
	"time"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/wstest"
)

// PresenceMsg is what the presence instances' clients receive: "joined"
// and "left" announcements, and the "marker" a client sends.
type PresenceMsg struct {
	Type string `json:"type"`
	From string `json:"from"`
}

// PresenceInstance is one wsroom process with presence: at
// /{room}?name=NAME a client joins As NAME, announcing "joined" and, with
// LeaveWith, "left"; every message it sends is published to the room.
type PresenceInstance struct {
	Rooms *wsroom.Rooms[PresenceMsg]
	URL   string
}

// TestLease is the presence lease of the test instances: short, so that
// expiry is seen within a test, long enough for a loaded machine to
// refresh in time.
const TestLease = 2 * time.Second

// StartPresenceInstance serves a presence instance on b, with lease, on a
// real socket until cleanup.
func StartPresenceInstance(t testing.TB, b wsroom.PresenceBroker, lease time.Duration) *PresenceInstance {
	t.Helper()
	in := &PresenceInstance{Rooms: wsroom.NewRooms[PresenceMsg](wsroom.WithBroker(b), wsroom.WithPresenceLease(lease))}
	in.URL = serve(t, wsroom.New(PresenceHandler(in.Rooms), wsroom.WithRateLimit(0, 0)))
	return in
}

// PresenceHandler is the handler of a presence instance on rooms.
func PresenceHandler(rooms *wsroom.Rooms[PresenceMsg]) wsroom.Handler[PresenceMsg, PresenceMsg] {
	return func(c *wsroom.Conn[PresenceMsg], msgs iter.Seq2[PresenceMsg, error]) error {
		room := rooms.Room(c.Request().PathValue("room"))
		name := c.Request().URL.Query().Get("name")
		leave, err := room.Join(c, PresenceMsg{Type: "joined", From: name},
			wsroom.As(name, map[string]string{"name": name}), wsroom.LeaveWith(PresenceMsg{Type: "left", From: name}))
		if err != nil {
			return err
		}
		defer leave()
		for msg, err := range msgs {
			if err != nil {
				return err
			}
			_ = room.Publish(msg)
		}
		return nil
	}
}

// DialPresence connects name to room at an instance's URL and waits for
// its own "joined", which it receives before anything else of the room.
func DialPresence(t testing.TB, base, room, name string) *Client {
	t.Helper()
	c := wstest.Dial(t, base+"/"+room+"?"+url.Values{"name": {name}}.Encode())
	if m := NextPresenceMsg(t, c); m.Type != "joined" || m.From != name {
		t.Fatalf("%s's first frame is %+v, not its own joined", name, m)
	}
	return c
}

// NextPresenceMsg reads c's next frame.
func NextPresenceMsg(t testing.TB, c *Client) PresenceMsg {
	t.Helper()
	data := c.Message(t)
	var m PresenceMsg
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("frame %q: %v", data, err)
	}
	return m
}

// Who returns room's presence on rooms as "key:connections" strings,
// sorted, and Presence's error.
func Who(rooms *wsroom.Rooms[PresenceMsg], room string) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), wstest.Timeout)
	defer cancel()
	p, err := rooms.Room(room).Presence(ctx)
	var out []string
	for e := range p.All() {
		out = append(out, fmt.Sprintf("%s:%d", e.Key, e.Connections))
	}
	return out, err
}

// AwaitPresence waits, for at most within, until room's presence on every
// instance is want ("key:connections", sorted).
func AwaitPresence(t testing.TB, within time.Duration, room string, want []string, instances ...*wsroom.Rooms[PresenceMsg]) {
	t.Helper()
	for i, rooms := range instances {
		var got []string
		wstest.WaitWithin(t, within, fmt.Sprintf("instance %d's presence of %q to be %v", i, room, want), func() bool {
			var err error
			got, err = Who(rooms, room)
			return err == nil && fmt.Sprint(got) == fmt.Sprint(want)
		})
	}
}

// UntilMarker sends a marker from c and returns the frames c receives
// before it arrives, other members' markers left out.
func UntilMarker(t testing.TB, c *Client, name string) []PresenceMsg {
	t.Helper()
	c.Send(t, PresenceMsg{Type: "marker", From: name})
	var got []PresenceMsg
	for {
		m := NextPresenceMsg(t, c)
		switch {
		case m.Type != "marker":
			got = append(got, m)
		case m.From == name:
			return got
		}
	}
}

// ExpectOnly fails the test unless the frames c receives before a marker
// it sends (see UntilMarker) are want, in any order: messages of
// different publishers have none.
func ExpectOnly(t testing.TB, c *Client, name string, want ...PresenceMsg) {
	t.Helper()
	if got := UntilMarker(t, c, name); !sameSet(got, want) {
		t.Fatalf("%s received %v before its marker, want %v", name, got, want)
	}
}

// PresenceAcrossInstances checks presence on two instances joined by
// brokers from pair: a member on each and a second tab of one of them
// are seen by both instances within a second, as one entry with two
// connections; a tab closing counts down; a member leaving is gone from
// both within a second, and its "left" reaches the other member once.
func PresenceAcrossInstances(t *testing.T, pair PresencePair) {
	a, b := pair(t)
	A, B := StartPresenceInstance(t, a, TestLease), StartPresenceInstance(t, b, TestLease)
	ann := DialPresence(t, A.URL, "p", "ann")
	bob := DialPresence(t, B.URL, "p", "bob")
	ann2 := DialPresence(t, B.URL, "p", "ann")
	AwaitPresence(t, time.Second, "p", []string{"ann:2", "bob:1"}, A.Rooms, B.Rooms)
	ann2.Close()
	AwaitPresence(t, time.Second, "p", []string{"ann:1", "bob:1"}, A.Rooms, B.Rooms)
	bob.Close()
	AwaitPresence(t, time.Second, "p", []string{"ann:1"}, A.Rooms, B.Rooms)
	// Read, not raced against a marker of ann's: B publishes bob's left
	// after bob is out of the presence, and ann's marker would be
	// delivered at once on A.
	want := []PresenceMsg{{Type: "joined", From: "bob"}, {Type: "joined", From: "ann"},
		{Type: "left", From: "ann"}, {Type: "left", From: "bob"}}
	got := make([]PresenceMsg, 0, len(want))
	for range want {
		got = append(got, NextPresenceMsg(t, ann))
	}
	if !sameSet(got, want) {
		t.Fatalf("ann received %v, want %v", got, want)
	}
	ExpectOnly(t, ann, "ann")
}

// DeadProcessAnnouncedOnce checks what becomes of the members of a
// process that died: n entries put through a, with a short lease, by a
// process that never refreshes them. On two instances, each with a
// member in the room, the dead members vanish from both instances'
// presence, each one's "left" reaches both members exactly once, and the
// instances claimed n entries between them.
func DeadProcessAnnouncedOnce(t *testing.T, pair PresencePair, n int) {
	a, b := pair(t)
	A, B := StartPresenceInstance(t, a, TestLease), StartPresenceInstance(t, b, TestLease)
	ca, cb := DialPresence(t, A.URL, "d", "alive-a"), DialPresence(t, B.URL, "d", "alive-b")
	firstJoins(t, ca, cb, "alive-a", "alive-b")
	dead := make([]wsroom.PresenceRecord, n)
	var want []PresenceMsg
	for i := range dead {
		name := fmt.Sprintf("ghost-%02d", i)
		dead[i] = wsroom.PresenceRecord{ID: "dead-" + name, Owner: "dead", Key: name, Joined: time.Now(),
			Leave: []byte(fmt.Sprintf(`{"type":"left","from":%q}`, name))}
		want = append(want, PresenceMsg{Type: "left", From: name})
	}
	put(t, a, "d", 3*TestLease, dead...)
	wstest.WaitFor(t, "the dead process's members to be present", func() bool {
		got, _ := Who(A.Rooms, "d")
		return len(got) == n+2
	})
	AwaitPresence(t, 3*TestLease+wstest.Timeout, "d", []string{"alive-a:1", "alive-b:1"}, A.Rooms, B.Rooms)
	for _, c := range []*Client{ca, cb} {
		got := make([]PresenceMsg, 0, n)
		for range n {
			got = append(got, NextPresenceMsg(t, c))
		}
		if !sameSet(got, want) {
			t.Fatalf("a survivor's member received %v, want each ghost's left once", got)
		}
	}
	// Two more lease rounds on each instance: no second claim of any entry
	// can be in flight, so nothing may follow but the markers.
	la, lb := A.Rooms.Stats().PresenceLeases, B.Rooms.Stats().PresenceLeases
	wstest.WaitFor(t, "two more lease rounds", func() bool {
		return A.Rooms.Stats().PresenceLeases >= la+2 && B.Rooms.Stats().PresenceLeases >= lb+2
	})
	ExpectOnly(t, ca, "alive-a")
	ExpectOnly(t, cb, "alive-b")
	if got := A.Rooms.Stats().PresenceClaimed + B.Rooms.Stats().PresenceClaimed; got != int64(n) {
		t.Fatalf("the instances claimed %d entries, want %d", got, n)
	}
}

// firstJoins checks the announcements of two members, na on ca, then nb
// on cb, each on its own instance: ca receives nb's joined, and cb
// nothing but, maybe, na's joined, which may still have been on its way
// when nb joined (a broker whose publish does not wait for its server,
// as NATS's, can deliver it after nb's subscription). A marker of na's is
// the barrier: one publisher's messages keep their order, so once it has
// reached cb, so has anything na's instance published before it.
func firstJoins(t testing.TB, ca, cb *Client, na, nb string) {
	t.Helper()
	if m := NextPresenceMsg(t, ca); m != (PresenceMsg{Type: "joined", From: nb}) {
		t.Fatalf("%s got %+v, want %s's joined", na, m, nb)
	}
	ExpectOnly(t, ca, na)
	for m := NextPresenceMsg(t, cb); m != (PresenceMsg{Type: "marker", From: na}); m = NextPresenceMsg(t, cb) {
		if m != (PresenceMsg{Type: "joined", From: na}) {
			t.Fatalf("%s got %+v, want nothing but %s's joined before %s's marker", nb, m, na, na)
		}
	}
}

// sameSet reports whether got and want hold the same messages, in any
// order, each as often.
func sameSet(got, want []PresenceMsg) bool {
	count := map[PresenceMsg]int{}
	for _, m := range want {
		count[m]++
	}
	for _, m := range got {
		count[m]--
	}
	for _, n := range count {
		if n != 0 {
			return false
		}
	}
	return len(got) == len(want)
}

// PresenceOutage checks that an outage of the broker's server announces
// no live member gone: on two instances with a member each, the server is
// stopped for longer than a lease and started again (whether it kept the
// entries or lost them); no "left" reaches anyone, nothing is claimed,
// and presence converges on both instances again.
func PresenceOutage(t *testing.T, pair PresencePair, stop, start func()) {
	a, b := pair(t)
	A, B := StartPresenceInstance(t, a, TestLease), StartPresenceInstance(t, b, TestLease)
	ca, cb := DialPresence(t, A.URL, "o", "live-a"), DialPresence(t, B.URL, "o", "live-b")
	firstJoins(t, ca, cb, "live-a", "live-b")
	AwaitPresence(t, time.Second, "o", []string{"live-a:1", "live-b:1"}, A.Rooms, B.Rooms)
	errsA, errsB := A.Rooms.Stats().PresenceErrors, B.Rooms.Stats().PresenceErrors
	stop()
	wstest.WaitFor(t, "both instances to fail a refresh", func() bool {
		return A.Rooms.Stats().PresenceErrors > errsA && B.Rooms.Stats().PresenceErrors > errsB
	})
	// Down for more than a lease: whatever the server kept has expired.
	down := time.Now()
	wstest.WaitFor(t, "a lease and a half to pass", func() bool { return time.Since(down) > 3*TestLease/2 })
	// The local view stays, with an error that says it is local.
	if got, err := Who(A.Rooms, "o"); !errors.Is(err, wsroom.ErrBroker) || fmt.Sprint(got) != "[live-a:1]" {
		t.Fatalf("during the outage Presence returned %v, %v; want [live-a:1] and an error wrapping ErrBroker", got, err)
	}
	start()
	AwaitPresence(t, wstest.Timeout, "o", []string{"live-a:1", "live-b:1"}, A.Rooms, B.Rooms)
	// Past the lease of answers the instances wait for before claiming,
	// and two rounds more: a wrong claim would have happened by now.
	back := time.Now()
	la, lb := A.Rooms.Stats().PresenceLeases, B.Rooms.Stats().PresenceLeases
	wstest.WaitFor(t, "the instances to claim again", func() bool {
		return time.Since(back) > 2*TestLease && A.Rooms.Stats().PresenceLeases >= la+2 && B.Rooms.Stats().PresenceLeases >= lb+2
	})
	ExpectOnly(t, ca, "live-a")
	ExpectOnly(t, cb, "live-b")
	if got := A.Rooms.Stats().PresenceClaimed + B.Rooms.Stats().PresenceClaimed; got != 0 {
		t.Fatalf("%d live entries claimed as dead after the outage", got)
	}
	AwaitPresence(t, time.Second, "o", []string{"live-a:1", "live-b:1"}, A.Rooms, B.Rooms)
}
