package client_test

import (
	"errors"
	"fmt"
	"iter"
	"testing"
	"time"

	"github.com/wsroom/wsroom/client"
	"github.com/wsroom/wsroom/internal/wstest"
)

// A range over Messages sees every recorded message of the room once and
// in order while the client's connection is cut again and again and a
// publisher goes on: each reconnect resumes from the last message
// received, and the server's replay fills the gap exactly.
func TestRangeSeesEveryRecordedMessageOnceInOrderAcrossCuts(t *testing.T) {
	wstest.CheckGoroutines(t)
	const total, cuts = 3000, 12
	srv := newServer(t, total+cuts+1)
	p := newProxy(t, srv.URL)
	st := newStatuses()
	c := dial(t, deadline(t), p.URL("/room/cuts"), fast(client.WithStatus(st.add))...)

	room := srv.rooms.Room("cuts")
	joined := make(chan struct{})
	published := make(chan error, 1)
	go func() { published <- publishAndCut(room, p, st, joined, total, cuts) }()

	var seq uint64 // the last position seen: each recorded message is the next
	want := 1      // the next "msg" expected
	for m, err := range c.Messages() {
		if err != nil {
			t.Fatalf("after msg %d: %v (statuses %v)", want-1, err, st.all())
		}
		if m.Seq != seq+1 {
			t.Fatalf("after seq %d came seq %d (%+v): a gap or a repeat", seq, m.Seq, m)
		}
		seq = m.Seq
		switch m.Type {
		case "joined": // ours: the first, then one per reconnect, recorded too
			if seq == 1 {
				close(joined)
			}
		case "msg":
			if m.N != want {
				t.Fatalf("msg %d, want %d", m.N, want)
			}
			want++
		default:
			t.Fatalf("unexpected %+v: the recovery notice is the client's", m)
		}
		if want > total {
			break
		}
	}
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	if got := st.count(client.Recovered); got != cuts {
		t.Errorf("%d recoveries, want %d, one per cut (statuses %v)", got, cuts, st.all())
	}
	if got := st.count(client.NotRecovered); got != 0 {
		t.Errorf("%d not recovered: the history covers every gap", got)
	}
	missed := 0
	for _, s := range st.all() {
		missed += s.Missed
	}
	if missed == 0 {
		t.Error("no reconnect missed anything: the replay went untested")
	}
	t.Logf("%d messages, %d cuts, %d replayed by the server, %d statuses", total, cuts, missed, len(st.all()))
	if pos := c.Position(); pos.Offset != seq || pos.Epoch == "" {
		t.Errorf("Position %+v, want seq %d", pos, seq)
	}
}

// publishAndCut publishes "msg" 1 to total once the client has joined,
// and cuts its connection cuts times along the way, each time once the
// client has recovered from the cut before.
func publishAndCut(room interface{ Publish(Out) error }, p *proxy, st *statuses, joined <-chan struct{}, total, cuts int) error {
	timeout := time.After(20 * time.Second)
	select {
	case <-joined:
	case <-timeout:
		return errors.New("the client never joined")
	}
	cut := 0
	for i := 1; i <= total; i++ {
		if err := room.Publish(Out{Type: "msg", N: i}); err != nil {
			return err
		}
		if cut == cuts || i%(total/(cuts+1)) != 0 {
			continue
		}
		for st.count(client.Recovered) < cut {
			select {
			case <-st.kick:
			case <-timeout:
				return fmt.Errorf("no recovery from cut %d: %v", cut, st.all())
			}
		}
		if p.Cut() == 0 {
			return fmt.Errorf("cut %d found no connection", cut+1)
		}
		cut++
	}
	return nil
}

// A client away for longer than the history keeps is told it was not
// recovered, in the stream where the gap is, and goes on with the live
// stream of a fresh join: what it missed is not made up.
func TestHistoryLostIsReportedAndTheStreamGoesOn(t *testing.T) {
	wstest.CheckGoroutines(t)
	srv := newServer(t, 10)
	p := newProxy(t, srv.URL)
	var events []string // statuses and messages, in the range's order
	c := dial(t, deadline(t), p.URL("/room/lost"), fast(client.WithStatus(func(s client.Status) {
		if s.Kind != client.Reconnecting { // how many attempts it takes is not the point
			events = append(events, s.Kind.String())
		}
	}))...)
	room := srv.rooms.Room("lost")

	next := messages(t, c)
	if m := next(); m.Type != "joined" {
		t.Fatalf("first %+v, want joined", m)
	}
	for i := 1; i <= 3; i++ {
		_ = room.Publish(Out{Type: "msg", N: i})
		if m := next(); m.N != i {
			t.Fatalf("got %+v, want msg %d", m, i)
		}
	}
	before := c.Position()
	p.Down()
	for i := 4; i <= 40; i++ { // 37 missed, the history keeps 10
		_ = room.Publish(Out{Type: "msg", N: i})
	}
	p.Up()
	events = nil
	if m := next(); m.Type != "joined" {
		t.Fatalf("after the reconnect %+v, want our joined: nothing of what was missed", m)
	}
	_ = room.Publish(Out{Type: "msg", N: 41})
	if m := next(); m.N != 41 {
		t.Fatalf("got %+v, want msg 41", m)
	}
	if fmt.Sprint(events) != "[reconnected not recovered]" {
		t.Errorf("statuses before the new stream %v, want [reconnected not recovered]", events)
	}
	if pos := c.Position(); pos.Epoch != before.Epoch || pos.Offset != before.Offset+37+2 {
		t.Errorf("Position %+v after %+v, want 37 missed, our joined and msg 41 further", pos, before)
	}
}

// messages returns a function that takes the next message of c's range,
// failing the test on an error.
func messages(t *testing.T, c *client.Conn[In, Out]) func() Out {
	pull, stop := iter.Pull2(c.Messages())
	t.Cleanup(stop)
	return func() Out {
		t.Helper()
		m, err, ok := pull()
		if !ok || err != nil {
			t.Fatalf("the range ended (%v) or failed: %v", ok, err)
		}
		return m
	}
}
