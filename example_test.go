package wsroom_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/wsroom/wsroom"
)

// The README's quick start: a chat room whose members hear each other, on
// any router, through a broker outage too.
func Example_chat() {
	verify := func(ctx context.Context, token string) (context.Context, error) {
		if _, ok := lookupSession(token); !ok {
			return nil, wsroom.ErrUnauthorized
		}
		return ctx, nil
	}

	type In struct {
		Type    string `json:"type" jsonschema:"enum=message,enum=typing"`
		Content string `json:"content,omitempty"`
	}
	type Out struct {
		Type    string `json:"type"`
		User    string `json:"username,omitempty"`
		Content string `json:"content,omitempty"`
		Error   string `json:"error,omitempty"`
	}

	rooms := wsroom.NewRooms[Out]()
	chat := wsroom.New(func(c *wsroom.Conn[Out], msgs iter.Seq2[In, error]) error {
		room := rooms.Room(c.Request().PathValue("room"))
		user := c.Request().URL.Query().Get("username")
		leave, err := room.Join(c, Out{Type: "joined", User: user}) // subscribe + announce, one step
		if err != nil {
			return err // ErrTooManyRooms: a broker outage never fails Join
		}
		defer leave()
		for msg, err := range msgs { // decoded and validated; invalid input never gets here
			if err != nil {
				return err
			}
			err := room.Publish(Out{Type: msg.Type, User: user, Content: msg.Content})
			if errors.Is(err, wsroom.ErrBroker) { // local members have it; other instances may not
				_ = c.Send(Out{Type: "error", Error: "not delivered to other servers"})
			} else if err != nil {
				return err
			}
		}
		return nil
	}, wsroom.WithGuard(wsroom.RequireToken(verify)))

	mux := http.NewServeMux()
	mux.Handle("GET /chat/{room}", chat)
}

// In an existing server, an endpoint is one more handler: behind any
// middleware, with the server's own timeouts.
func ExampleNew_existingServer() {
	ep := wsroom.New(func(c *wsroom.Conn[string], msgs iter.Seq2[string, error]) error {
		return c.Send("live: " + c.Request().PathValue("topic"))
	})
	logging := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			log.Printf("%s %s", r.Method, r.URL.Path)
			h.ServeHTTP(w, r) // w is net/http's own: it can be hijacked
		})
	}

	mux := http.NewServeMux()
	mux.Handle("GET /live/{topic}", logging(ep))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

// An endpoint is an http.Handler: mount it on any router. The handler
// ranges over the client's messages, already decoded and validated.
func ExampleNew() {
	type In struct {
		Type    string `json:"type" jsonschema:"enum=message,enum=typing"`
		Content string `json:"content,omitempty"`
	}
	type Out struct {
		Echo string `json:"echo"`
	}
	echo := wsroom.New(func(c *wsroom.Conn[Out], msgs iter.Seq2[In, error]) error {
		for msg, err := range msgs {
			if err != nil {
				return err
			}
			if err := c.Send(Out{Echo: msg.Content}); err != nil {
				return err
			}
		}
		return nil
	})

	mux := http.NewServeMux()
	mux.Handle("GET /echo", echo)
	_ = http.ListenAndServe("localhost:8080", mux)
}

// Rooms broadcast to every subscriber. In-process consumers subscribe a
// func; connections subscribe with Subscribe or Join.
func ExampleRooms() {
	type Event struct {
		Kind string `json:"kind"`
	}
	rooms := wsroom.NewRooms[Event]()
	lobby := rooms.Room("lobby")
	stop, err := lobby.SubscribeFunc(func(e Event) { fmt.Println("lobby got", e.Kind) })
	if err != nil {
		log.Fatal(err)
	}

	_ = lobby.Publish(Event{Kind: "hello"})
	_ = rooms.Room("elsewhere").Publish(Event{Kind: "not for the lobby"})
	fmt.Println("rooms with subscribers:", rooms.Len())

	stop() // the last subscriber left: the room is removed
	fmt.Println("rooms with subscribers:", rooms.Len())
	// Output:
	// lobby got hello
	// rooms with subscribers: 1
	// rooms with subscribers: 0
}

// Join subscribes a connection and announces it in one step, so the joiner
// sees its own announcement first; the room learns of the leave after.
func ExampleRoom_Join() {
	type In struct {
		Text string `json:"text"`
	}
	type Out struct {
		Kind string `json:"kind"`
		From string `json:"from"`
		Text string `json:"text,omitempty"`
	}
	rooms := wsroom.NewRooms[Out]()
	chat := wsroom.New(func(c *wsroom.Conn[Out], msgs iter.Seq2[In, error]) error {
		room := rooms.Room(c.Request().PathValue("room"))
		name := c.Request().URL.Query().Get("name")
		leave, err := room.Join(c, Out{Kind: "joined", From: name})
		if err != nil {
			return err
		}
		defer func() {
			leave()
			_ = room.Publish(Out{Kind: "left", From: name})
		}()
		for msg, err := range msgs {
			if err != nil {
				return err
			}
			_ = room.Publish(Out{Kind: "said", From: name, Text: msg.Text})
		}
		return nil
	})
	http.Handle("GET /rooms/{room}", chat)
}

type userKey struct{}

// RequireToken authenticates the upgrade request before it is upgraded:
// from "Authorization: Bearer <token>", or ?token= for browsers.
func ExampleRequireToken() {
	verify := func(ctx context.Context, token string) (context.Context, error) {
		user, ok := lookupSession(token)
		if !ok {
			return nil, wsroom.ErrUnauthorized // 401, no upgrade
		}
		return context.WithValue(ctx, userKey{}, user), nil
	}
	ep := wsroom.New(func(c *wsroom.Conn[string], msgs iter.Seq2[string, error]) error {
		user := c.Context().Value(userKey{}).(string)
		return c.Send("hello " + user)
	}, wsroom.WithGuard(wsroom.RequireToken(verify)))
	http.Handle("GET /ws", ep)
}

func lookupSession(token string) (string, bool) { return "alice", token == "t0k3n" }

// Shutdown closes WebSockets with 1001 and waits for their handlers;
// http.Server.Shutdown does not wait for hijacked connections, so call both.
func ExampleEndpoint_Shutdown() {
	ep := wsroom.New(func(c *wsroom.Conn[string], msgs iter.Seq2[string, error]) error {
		for _, err := range msgs {
			if err != nil {
				return err
			}
		}
		return nil
	})
	srv := &http.Server{Addr: "localhost:8080", Handler: ep, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
			log.Fatal(err)
		}
	}()

	// ... on SIGTERM:
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go srv.Shutdown(ctx) // stop accepting, drain plain HTTP
	if err := ep.Shutdown(ctx); err != nil {
		log.Print("connections still closing: ", err)
	}
}

// To send to one user, wherever they are connected (several tabs, any
// instance behind a broker), give every user a room of their own and
// publish to it: a direct message is a publish to the recipient's room.
func ExampleRooms_oneRoomPerUser() {
	type Out struct {
		From string `json:"from"`
		Text string `json:"text"`
	}
	type In struct {
		To   string `json:"to"`
		Text string `json:"text"`
	}
	inboxes := wsroom.NewRooms[Out]() // wsroom.WithBroker(b) to span instances
	dm := wsroom.New(func(c *wsroom.Conn[Out], msgs iter.Seq2[In, error]) error {
		me := c.Context().Value(userKey{}).(string) // set by your Guard
		leave, err := inboxes.Room("user:" + me).Subscribe(c)
		if err != nil {
			return err
		}
		defer leave()
		for msg, err := range msgs {
			if err != nil {
				return err
			}
			if err := inboxes.Room("user:" + msg.To).Publish(Out{From: me, Text: msg.Text}); errors.Is(err, wsroom.ErrBroker) {
				_ = c.Send(Out{From: "server", Text: "not delivered to other servers"})
			}
		}
		return nil
	})
	http.Handle("GET /dm", dm)
}

// Members lists the connections in a room on this instance (presence
// across instances is not in wsroom yet): here, the names they joined
// with, taken from their upgrade requests.
func ExampleRoom_Members() {
	rooms := wsroom.NewRooms[string]()
	names := func(room string) []string {
		var out []string
		for c := range rooms.Room(room).Members() {
			out = append(out, c.Request().URL.Query().Get("name"))
		}
		return out
	}
	fmt.Println(names("lobby")) // nobody yet
	// Output: []
}

// A registry with history records what its rooms publish: a client that
// reconnects with the last position it saw (?since=SEQ&epoch=EPOCH) is
// sent a recovery notice, what it missed, then the live stream. Typing
// signals are ephemeral: delivered, never recorded.
func ExampleWithHistory() {
	type In struct {
		Type    string `json:"type" jsonschema:"enum=message,enum=typing"`
		Content string `json:"content,omitempty"`
	}
	type Out struct {
		Seq     uint64 `json:"seq,omitempty"`   // set by the room on recorded messages
		Epoch   string `json:"epoch,omitempty"` // idem
		Type    string `json:"type"`
		User    string `json:"username,omitempty"`
		Content string `json:"content,omitempty"`
	}

	rooms := wsroom.NewRooms[Out](wsroom.WithHistory(1000, 5*time.Minute))
	chat := wsroom.New(func(c *wsroom.Conn[Out], msgs iter.Seq2[In, error]) error {
		room := rooms.Room(c.Request().PathValue("room"))
		user := c.Request().URL.Query().Get("username")
		// A reconnecting client first gets the recovery notice and what it
		// missed, then its own "joined": no gap, nothing twice.
		leave, err := room.Join(c, Out{Type: "joined", User: user})
		if err != nil {
			return err
		}
		defer func() {
			leave()
			_ = room.Publish(Out{Type: "left", User: user})
		}()
		for msg, err := range msgs {
			if err != nil {
				return err
			}
			out := Out{Type: msg.Type, User: user, Content: msg.Content}
			if msg.Type == "typing" {
				err = room.PublishEphemeral(out) // never recorded, never replayed
			} else {
				err = room.Publish(out) // recorded: it carries "seq" and "epoch"
			}
			if err != nil {
				return err
			}
		}
		return nil
	})

	mux := http.NewServeMux()
	mux.Handle("GET /chat/{room}", chat)
}

// Compression is negotiated with every client that offers it, as browsers
// do; the answer lets one compressed frame serve every member of a room.
func ExampleWithCompression() {
	handler := func(c *wsroom.Conn[string], msgs iter.Seq2[string, error]) error {
		for _, err := range msgs {
			if err != nil {
				return err
			}
		}
		return nil
	}
	ep := wsroom.New(handler, wsroom.WithCompression(0))
	srv := httptest.NewServer(ep)
	defer srv.Close()

	// A browser's upgrade request, as it offers the extension.
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	req.Header.Set("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.StatusCode, resp.Header.Get("Sec-WebSocket-Extensions"))
	_ = resp.Body.Close()
	if err := ep.Shutdown(context.Background()); err != nil {
		log.Fatal(err)
	}
	// Output:
	// 101 permessage-deflate; server_no_context_takeover; client_no_context_takeover
}
