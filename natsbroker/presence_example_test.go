package natsbroker_test

import (
	"context"
	"log"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/natsbroker"
)

// A Broker made WithPresence is a wsroom.PresenceBroker: members that
// join As a key are present on every instance, and a dead instance's
// members are announced gone by a survivor once their lease has run out.
func Example_presence() {
	type Msg struct {
		Type string `json:"type"`
		User string `json:"user"`
	}
	nc, err := nats.Connect(nats.DefaultURL, nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true))
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Drain() // after the broker
	// WithPresence needs JetStream (nats-server -js, 2.11 or later).
	broker, err := natsbroker.New(context.Background(), nc, natsbroker.WithPrefix("chat"), natsbroker.WithPresence())
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
