package natsbroker_test

import (
	"context"
	"iter"
	"log"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/natsbroker"
)

// Every instance of a chat service joins its rooms through NATS: a message
// published on one instance reaches the room's members on all of them.
func Example() {
	type Msg struct {
		User string `json:"user"`
		Text string `json:"text"`
	}

	// The connection is the application's: reconnect for ever, so that
	// rooms are subscribed again after any outage, and notice a dead
	// server within a minute.
	nc, err := nats.Connect(nats.DefaultURL,
		nats.Name("chat"),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.PingInterval(20*time.Second),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Drain() // after the broker: sends what is buffered, then closes

	broker, err := natsbroker.New(context.Background(), nc, natsbroker.WithPrefix("chat.rooms"))
	if err != nil {
		log.Fatal(err)
	}
	defer broker.Close()

	rooms := wsroom.NewRooms[Msg](wsroom.WithBroker(broker))
	chat := wsroom.New(func(c *wsroom.Conn[Msg], msgs iter.Seq2[Msg, error]) error {
		room := rooms.Room(c.Request().PathValue("room"))
		leave, err := room.Subscribe(c)
		if err != nil {
			return err
		}
		defer leave()
		for msg, err := range msgs {
			if err != nil {
				return err
			}
			// Local members get msg even when NATS is down; the error
			// (counted in rooms.Stats().BrokerErrors) says other
			// instances may not.
			_ = room.Publish(msg)
		}
		return nil
	})

	mux := http.NewServeMux()
	mux.Handle("GET /chat/{room}", chat)
	srv := &http.Server{Addr: ":3000", Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

// Rooms with history keep it in JetStream: every instance gives a room's
// recorded messages the same positions, and a member that drops from one
// instance recovers on another (the server runs with JetStream enabled:
// nats-server -js).
func ExampleWithHistory() {
	type Msg struct {
		Type string `json:"type"`
		User string `json:"user"`
		Text string `json:"text,omitempty"`
	}
	nc, err := nats.Connect(nats.DefaultURL, nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true))
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Drain()

	// Each room keeps its last 1,000 records, each for 10 minutes.
	broker, err := natsbroker.New(context.Background(), nc, natsbroker.WithHistory(1000, 10*time.Minute))
	if err != nil {
		log.Fatal(err) // JetStream not enabled, or the stream refused
	}
	defer broker.Close()

	rooms := wsroom.NewRooms[Msg](wsroom.WithBroker(broker), wsroom.WithHistory(1000, 10*time.Minute))
	chat := wsroom.New(func(c *wsroom.Conn[Msg], msgs iter.Seq2[Msg, error]) error {
		user := c.Request().URL.Query().Get("user")
		room := rooms.Room(c.Request().PathValue("room"))
		// A client that reconnects with ?since=SEQ&epoch=EPOCH first
		// gets what it missed, then the live stream.
		leave, err := room.Join(c, Msg{Type: "joined", User: user})
		if err != nil {
			return err
		}
		defer leave()
		for msg, err := range msgs {
			if err != nil {
				return err
			}
			// While NATS is down the error wraps wsroom.ErrNotRecorded:
			// the message reached nobody, the sender can be told.
			_ = room.Publish(Msg{Type: "message", User: user, Text: msg.Text})
		}
		return nil
	})

	mux := http.NewServeMux()
	mux.Handle("GET /chat/{room}", chat)
	srv := &http.Server{Addr: ":3000", Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
