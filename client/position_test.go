package client_test

import (
	"fmt"
	"iter"
	"net/http"
	"testing"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/client"
	"github.com/wsroom/wsroom/internal/wstest"
	"github.com/wsroom/wsroom/wsroomtest"
)

// A Conn's Position, given to WithPosition, makes another Conn resume
// after the last message the first one's range was given.
func TestWithPositionResumesWhereAnotherConnStopped(t *testing.T) {
	wstest.CheckGoroutines(t)
	srv := newServer(t, 100)
	room := srv.rooms.Room("resume")
	first := dial(t, deadline(t), srv.url("resume"))
	next := messages(t, first)
	next() // joined
	for i := 1; i <= 3; i++ {
		_ = room.Publish(Out{Type: "msg", N: i})
		next()
	}
	pos := first.Position()
	_ = first.Close()
	_ = room.Publish(Out{Type: "msg", N: 4})

	st := newStatuses()
	second := dial(t, deadline(t), srv.url("resume"), client.WithPosition(pos), client.WithStatus(st.add))
	next = messages(t, second)
	if m := next(); m.N != 4 {
		t.Fatalf("first after resuming: %+v, want msg 4", m)
	}
	if all := st.all(); len(all) != 1 || all[0].Kind != client.Recovered || all[0].Missed != 1 {
		t.Errorf("statuses %v, want one recovery of 1 message", all)
	}
}

// The client drops a recorded message it has had (same epoch, same or
// older seq) whoever sends it again, and takes a new epoch's messages.
// The server here sends Outs with positions of its own making, as a
// server that repeats itself would.
func TestRepeatsAreDroppedByPosition(t *testing.T) {
	wstest.CheckGoroutines(t)
	frames := []Out{
		{Seq: 1, Epoch: "e1", Type: "a"}, {Seq: 2, Epoch: "e1", Type: "b"},
		{Seq: 2, Epoch: "e1", Type: "b again"}, {Seq: 1, Epoch: "e1", Type: "a again"},
		{Type: "ephemeral"}, {Seq: 3, Epoch: "e1", Type: "c"}, {Seq: 1, Epoch: "e2", Type: "d"}}
	ep := wsroom.New(func(c *wsroom.Conn[Out], msgs iter.Seq2[In, error]) error {
		for _, f := range frames {
			if err := c.Send(f); err != nil {
				return err
			}
		}
		return nil // 1000: final
	})
	srv := wsroomtest.NewServer(t, http.HandlerFunc(ep.ServeHTTP), ep)
	c := dial(t, deadline(t), srv.URL)
	var got []string
	for m, err := range c.Messages() {
		if err != nil {
			if wsroom.CloseStatus(err) != 1000 {
				t.Fatal(err)
			}
			break
		}
		got = append(got, m.Type)
	}
	want := "[a b ephemeral c d]"
	if s := fmt.Sprint(got); s != want {
		t.Errorf("got %s, want %s", s, want)
	}
	if pos := c.Position(); pos != (wsroom.Position{Offset: 1, Epoch: "e2"}) {
		t.Errorf("Position %+v, want the last one given, 1 of e2", pos)
	}
}
