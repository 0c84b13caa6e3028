package redisbroker_test

import (
	"context"
	"log"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/redisbroker"
)

// A Broker is a wsroom.PresenceBroker: members that join As a key are
// present on every instance, and a dead instance's members are announced
// gone by a survivor once their lease has run out.
func Example_presence() {
	type Msg struct {
		Type string `json:"type"`
		User string `json:"user"`
	}
	client := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
	defer client.Close() // after the broker
	broker, err := redisbroker.New(context.Background(), client, redisbroker.WithPrefix("chat"))
	if err != nil {
		log.Fatal(err)
	}
	defer broker.Close()

	rooms := wsroom.NewRooms[Msg](
		wsroom.WithBroker(broker),
		wsroom.WithPresenceLease(20*time.Second), // renewed every 5 s; a dead instance's members are gone within 25 s
		wsroom.WithPresenceLimits(10000, 4096),   // keys per room and instance, bytes per entry
	)
	_ = rooms // Join(c, joined, wsroom.As(user, nil), wsroom.LeaveWith(left)); Room.Presence(ctx)
}
