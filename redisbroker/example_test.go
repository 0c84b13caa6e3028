package redisbroker_test

import (
	"context"
	"iter"
	"log"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/redisbroker"
)

// Every instance of a chat service joins its rooms through Redis: a message
// published on one instance reaches the room's members on all of them.
func Example() {
	type Msg struct {
		User string `json:"user"`
		Text string `json:"text"`
	}

	// The client is the application's. ContextTimeoutEnabled lets the
	// broker's publish timeout bound a publish entirely.
	client := redis.NewClient(&redis.Options{
		Addr:                  "localhost:6379",
		ContextTimeoutEnabled: true,
	})
	defer client.Close() // after the broker

	broker, err := redisbroker.New(context.Background(), client,
		redisbroker.WithPrefix("chat"), // room r is channel "chat:r"
		redisbroker.WithPublishTimeout(500*time.Millisecond),
	)
	if err != nil {
		log.Fatal(err) // an option is not valid: New does no I/O
	}
	defer broker.Close()

	rooms := wsroom.NewRooms[Msg](wsroom.WithBroker(broker))
	chat := wsroom.New(func(c *wsroom.Conn[Msg], msgs iter.Seq2[Msg, error]) error {
		room := rooms.Room(c.Request().PathValue("room"))
		leave, err := room.Subscribe(c) // returns once Redis has the room's subscription (or is known down)
		if err != nil {
			return err
		}
		defer leave()
		for msg, err := range msgs {
			if err != nil {
				return err
			}
			// Local members get msg even when Redis is down; the error
			// (counted in rooms.Stats().BrokerErrors) says other
			// instances may not.
			_ = room.Publish(msg)
		}
		return nil
	})

	mux := http.NewServeMux()
	mux.Handle("GET /chat/{room}", chat)
	srv := &http.Server{Addr: "localhost:3000", Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

// Rooms with history keep it in Redis: a member that drops from one
// instance recovers what it missed on another, and every instance
// delivers a room's recorded messages in the same order.
func ExampleWithHistory() {
	type Msg struct {
		User string `json:"user"`
		Text string `json:"text"`
	}

	client := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
	defer client.Close() // after the broker

	broker, err := redisbroker.New(context.Background(), client,
		redisbroker.WithPrefix("chat"),
		// Each room's stream keeps its last 1000 messages (a hundred or
		// so more: it is trimmed with ~), for 5 minutes after its last.
		redisbroker.WithHistory(1000, 5*time.Minute),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer broker.Close()

	rooms := wsroom.NewRooms[Msg](
		wsroom.WithBroker(broker), // a HistoryBroker: positions come from Redis
		wsroom.WithHistory(1000, 5*time.Minute),
	)
	_ = rooms
}
