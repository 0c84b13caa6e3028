package pgbroker_test

import (
	"context"
	"log"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/pgbroker"
)

// A Broker is a wsroom.PresenceBroker: members that join As a key are
// present on every instance, and a dead instance's members are announced
// gone by a survivor once their lease, on the database's clock, has run
// out.
func Example_presence() {
	type Msg struct {
		Type string `json:"type"`
		User string `json:"user"`
	}
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, "postgres://chat@localhost:5432/chat?sslmode=disable")
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()                                                  // after the broker
	broker, err := pgbroker.New(ctx, pool, pgbroker.WithPrefix("chat")) // presence in chat_presence
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
