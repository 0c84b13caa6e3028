package client_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/client"
)

// A client of a room with history: across reconnects its range sees every
// recorded message once and in order, and it is told when the history
// could not cover a gap.
func Example() {
	url, stop := chatServer() // a wsroom endpoint on a loopback port, its rooms WithHistory
	defer stop()

	c, err := client.Dial[In, Out](context.Background(), url+"/room/lobby",
		client.WithToken("secret"),
		client.WithStatus(func(s client.Status) {
			if s.Kind == client.NotRecovered {
				log.Print("messages were lost: reload the room")
			}
		}),
	)
	if err != nil {
		log.Fatal(err) // refused (*client.UpgradeError), or unreachable
	}
	defer c.Close()
	for msg, err := range c.Messages() {
		if err != nil {
			log.Fatal(err) // the end: closed for good, refused, or gave up
		}
		fmt.Println(msg.Seq, msg.Type)
		if msg.Type == "echo" {
			break
		}
		if err := c.Send(In{Text: "hi"}); err != nil {
			log.Print(err) // client.ErrReconnecting: not sent, nothing queued
		}
	}
	// Output:
	// 1 joined
	// 2 echo
}

// chatServer serves the tests' room endpoint behind a token guard, until
// stop.
func chatServer() (url string, stop func()) {
	s := &server{rooms: wsroom.NewRooms[Out](wsroom.WithHistory(1000, 5*time.Minute))}
	s.ep = wsroom.New(s.handle, wsroom.WithGuard(wsroom.RequireToken(
		func(ctx context.Context, token string) (context.Context, error) { return ctx, nil })))
	mux := http.NewServeMux()
	mux.Handle("GET /room/{room}", s.ep)
	hs := httptest.NewServer(mux)
	return hs.URL, func() {
		_ = s.ep.Shutdown(context.Background())
		hs.Close()
	}
}
