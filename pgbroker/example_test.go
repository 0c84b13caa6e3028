package pgbroker_test

import (
	"context"
	"iter"
	"log"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/pgbroker"
)

// Every instance of a chat service joins its rooms through PostgreSQL: a
// message published on one instance reaches the room's members on all of
// them, and a member behind a listener that reconnects misses nothing.
func Example() {
	type Msg struct {
		User string `json:"user"`
		Text string `json:"text"`
	}

	// The pool is the application's; the broker listens on a connection
	// of its own made with the pool's config.
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, "postgres://chat@localhost:5432/chat?sslmode=disable")
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close() // after the broker

	broker, err := pgbroker.New(ctx, pool,
		pgbroker.WithPrefix("chat"), // tables chat_rooms and chat_log, created if missing
		pgbroker.WithHistory(1000, 10*time.Minute),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer broker.Close()

	rooms := wsroom.NewRooms[Msg](wsroom.WithBroker(broker))
	chat := wsroom.New(func(c *wsroom.Conn[Msg], msgs iter.Seq2[Msg, error]) error {
		room := rooms.Room(c.Request().PathValue("room"))
		leave, err := room.Subscribe(c) // returns once the room is LISTENed (or PostgreSQL is known down)
		if err != nil {
			return err
		}
		defer leave()
		for msg, err := range msgs {
			if err != nil {
				return err
			}
			// Local members get msg even when PostgreSQL is down; the
			// error (counted in rooms.Stats().BrokerErrors) says other
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

// A room's history lives in PostgreSQL: a record gets its position from
// the database, every process's recorded subscription receives it (the
// recorder's own included), and any process reads what came after a
// position a client reports when it reconnects.
func ExampleBroker_History() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, "postgres://chat@localhost:5432/chat?sslmode=disable")
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	broker, err := pgbroker.New(ctx, pool, pgbroker.WithHistory(wsroom.DefaultHistorySize, wsroom.DefaultHistoryTTL))
	if err != nil {
		log.Fatal(err)
	}
	defer broker.Close()

	cancel, ready := broker.SubscribeRecorded("lobby", func(pos wsroom.Position, msg []byte) {
		log.Printf("%s@%d: %s", pos.Epoch, pos.Offset, msg)
	})
	defer cancel()
	<-ready

	pos, err := broker.Record("lobby", []byte(`{"user":"ann","text":"hi"}`))
	if err != nil {
		log.Fatal(err) // not recorded: nobody receives it
	}

	// A client that saw everything up to pos.Offset-1 of pos.Epoch.
	since := wsroom.Position{Offset: pos.Offset - 1, Epoch: pos.Epoch}
	missed, epoch, complete, err := broker.History(ctx, "lobby", since, 1000)
	if err != nil {
		log.Fatal(err)
	}
	if !complete {
		log.Printf("history lost: start again in epoch %s", epoch)
	}
	for _, m := range missed {
		log.Printf("missed %d: %s", m.Position.Offset, m.Payload)
	}
}
