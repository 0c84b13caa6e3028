package asyncapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/asyncapi"
)

// The contract of a chat endpoint, served beside it: the pattern given to
// the mux is the one the document describes.
func ExampleNew() {
	verify := func(ctx context.Context, token string) (context.Context, error) { return ctx, nil }
	chat := wsroom.New(idle[ClientMessage, ChatMessage], wsroom.WithGuard(wsroom.RequireToken(verify)))

	const pattern = "GET /chat/room/{roomId}"
	doc, err := asyncapi.New(asyncapi.Info{Title: "Chat", Version: "1.0.0"},
		asyncapi.Endpoint(pattern, chat, asyncapi.TokenAuth(),
			asyncapi.Query("username", "The name shown to the room.")),
	)
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(pattern, chat)
	mux.Handle("GET /asyncapi.json", doc)

	var d struct {
		Channels map[string]struct{ Address string }
	}
	_ = json.Unmarshal(doc.JSON(), &d)
	fmt.Println(d.Channels["chatRoomRoomId"].Address)
	// Output: /chat/room/{roomId}
}
