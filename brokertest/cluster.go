package brokertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/wstest"
)

// Client is a WebSocket client of an Instance, on a real socket: Send
// writes a message as JSON, JSON reads the next one, Close closes the
// connection.
type Client = wstest.Client

// Msg is what the test instances' clients send and receive.
type Msg struct {
	From string `json:"from"`
	Seq  int    `json:"seq"`
}

// Instance is one wsroom process: a registry of rooms on a broker and an
// endpoint at /{room} that publishes every message its clients send.
type Instance struct {
	Rooms    *wsroom.Rooms[Msg]
	Endpoint *wsroom.Endpoint[Msg, Msg]
	URL      string
}

// StartInstance serves an instance on a real socket until cleanup.
func StartInstance(t testing.TB, b wsroom.Broker) *Instance {
	t.Helper()
	in := &Instance{Rooms: wsroom.NewRooms[Msg](wsroom.WithBroker(b))}
	in.Endpoint = wsroom.New(func(c *wsroom.Conn[Msg], msgs iter.Seq2[Msg, error]) error {
		room := in.Rooms.Room(c.Request().PathValue("room"))
		leave, err := room.Subscribe(c)
		if err != nil {
			return err
		}
		defer leave()
		for msg, err := range msgs {
			if err != nil {
				return err
			}
			// A broker error is counted in Rooms.Stats; local members
			// have the message regardless, so the connection goes on.
			_ = room.Publish(msg)
		}
		return nil
	}, wsroom.WithSendQueue(1<<14, 8<<20), wsroom.WithRateLimit(0, 0)) // the tests send floods on purpose
	in.URL = serve(t, in.Endpoint)
	return in
}

// endpoint is what serve needs of a wsroom.Endpoint, whatever its
// message types.
type endpoint interface {
	http.Handler
	Shutdown(context.Context) error
}

// serve serves ep at /{room} on a real socket and returns its URL; at
// cleanup it shuts ep down, then the server.
func serve(t testing.TB, ep endpoint) string {
	mux := http.NewServeMux()
	mux.Handle("GET /{room}", ep)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wstest.Timeout)
		defer cancel()
		_ = ep.Shutdown(ctx)
		srv.Close()
	})
	return srv.URL
}

// Join connects a client to room on the instance and waits until the room
// has it.
func (in *Instance) Join(t testing.TB, room string) *Client {
	t.Helper()
	before := in.Rooms.Room(room).Len()
	c := wstest.Dial(t, in.URL+"/"+room)
	wstest.WaitFor(t, "the client to join "+room, func() bool { return in.Rooms.Room(room).Len() > before })
	return c
}

// next returns the next message c receives that is not a probe (Seq < 0).
func next(t testing.TB, c *Client) Msg {
	t.Helper()
	for {
		var m Msg
		c.JSON(t, &m)
		if m.Seq >= 0 {
			return m
		}
	}
}

// Bridge sends probes from one client until another, on another instance,
// receives one of them: the brokers' subscriptions are then active end to
// end in that direction.
func Bridge(t testing.TB, from, to *Client) {
	t.Helper()
	probe := fmt.Sprintf("probe-%p", from)
	deadline := time.Now().Add(2 * wstest.Timeout)
	for i := -1; time.Now().Before(deadline); i-- {
		from.Send(t, Msg{From: probe, Seq: i})
		wait := time.Now().Add(50 * time.Millisecond)
		for time.Now().Before(wait) {
			ev, ok := to.NextWithin(time.Until(wait))
			if !ok {
				break
			}
			if ev.Closed {
				t.Fatalf("connection closed (%d %s) while bridging", ev.Code, ev.Reason)
			}
			var m Msg
			if json.Unmarshal(ev.Data, &m) == nil && m.From == probe {
				return
			}
		}
	}
	t.Fatal("the instances never connected through the broker")
}

// TwoInstances runs two complete wsroom instances joined by the pair's
// brokers: a client on A publishes n messages, a client on B receives them
// all in order, and A's client gets each of its own exactly once.
func TwoInstances(t *testing.T, pair Pair, n int) {
	a, b := pair(t)
	A, B := StartInstance(t, a), StartInstance(t, b)
	ca, cb := A.Join(t, "room"), B.Join(t, "room")
	Bridge(t, ca, cb)
	drainProbes(t, ca, cb)
	sent := make(chan error, 1)
	go func() {
		for i := range n {
			b, _ := json.Marshal(Msg{From: "a", Seq: i})
			if err := ca.Conn().WriteString(string(b)); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	defer func() {
		if err := <-sent; err != nil {
			t.Errorf("sending: %v", err)
		}
	}()
	for i := range n {
		if m := next(t, cb); m.From != "a" || m.Seq != i {
			t.Fatalf("B got %+v, want message %d from a", m, i)
		}
	}
	for i := range n {
		if m := next(t, ca); m.From != "a" || m.Seq != i {
			t.Fatalf("A got %+v, want its own message %d once", m, i)
		}
	}
	// No duplicate trails behind: the next message A gets is a marker.
	cb.Send(t, Msg{From: "b", Seq: n})
	if m := next(t, ca); m.From != "b" {
		t.Fatalf("A got %+v after its own messages, want b's marker: an echo was delivered twice", m)
	}
}

// drainProbes sends a marker through each client and discards what they
// receive until it arrives, so no probe is left in flight.
func drainProbes(t testing.TB, clients ...*Client) {
	t.Helper()
	for i, c := range clients {
		marker := Msg{From: fmt.Sprint("drain", i), Seq: -1000 - i}
		c.Send(t, marker)
		for {
			var m Msg
			c.JSON(t, &m)
			if m == marker {
				break
			}
		}
	}
}

// Outage stops the broker server under two instances and starts it again:
// local delivery works throughout, publishes during the outage fail and are
// counted, and afterwards the rooms are subscribed again without any user
// code, in both directions, rooms created during the outage included.
func Outage(t *testing.T, pair Pair, stop, start func()) {
	a, b := pair(t)
	A, B := StartInstance(t, a), StartInstance(t, b)
	a1, a2, b1 := A.Join(t, "o"), A.Join(t, "o"), B.Join(t, "o")
	Bridge(t, a1, b1)
	drainProbes(t, a1, a2, b1)

	stop()
	// A client library may take a moment to notice the outage: publish
	// until a publish fails, checking local delivery all along.
	errorsBefore := A.Rooms.Stats().BrokerErrors
	deadline := time.Now().Add(wstest.Timeout)
	for i := 0; A.Rooms.Stats().BrokerErrors == errorsBefore; i++ {
		if time.Now().After(deadline) {
			t.Fatal("publishes during the outage reported no error")
		}
		a1.Send(t, Msg{From: "a1", Seq: i})
		if m := next(t, a2); m.From != "a1" || m.Seq != i {
			t.Fatalf("during the outage a2 got %+v, want a1's message %d: local delivery must go on", m, i)
		}
	}

	// Publish says the message stayed local, in a way a handler can tell
	// from a real failure. (Seq < 0: the clients skip it as a probe.)
	if err := A.Rooms.Room("o").Publish(Msg{From: "direct", Seq: -1}); !errors.Is(err, wsroom.ErrBroker) {
		t.Fatalf("Publish during the outage returned %v, want an error wrapping wsroom.ErrBroker", err)
	}

	// Rooms that come into being during the outage are subscribed too once
	// the server is back; joining them neither fails nor waits for the
	// broker, which knows by now that it is disconnected.
	joining := time.Now()
	a3, b3 := A.Join(t, "born-in-outage"), B.Join(t, "born-in-outage")
	if took := time.Since(joining); took >= wsroom.BrokerReadyTimeout {
		t.Fatalf("two joins during the outage took %v: the broker did not release them at once", took)
	}

	start()
	Bridge(t, a1, b1) // A to B again
	Bridge(t, b1, a2) // and B to A
	Bridge(t, a3, b3)
	Bridge(t, b3, a3)
}
