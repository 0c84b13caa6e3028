package main

import (
	"embed"
	"io/fs"
	"iter"
	"net/http"
	"time"

	"github.com/wsroom/wsroom"
)

// ClientMessage is what a browser sends: a chat message or a typing signal.
type ClientMessage struct {
	Type    string  `json:"type" jsonschema:"enum=message,enum=typing"`
	Content *string `json:"content,omitempty"`
}

// ChatMessage is what every member of a room receives.
type ChatMessage struct {
	Type      string  `json:"type" jsonschema:"enum=message,enum=typing,enum=joined,enum=left"`
	Username  string  `json:"username"`
	Content   *string `json:"content,omitempty"`
	Timestamp string  `json:"timestamp" jsonschema:"format=date-time"`
}

// timestampLayout is RFC 3339 with milliseconds, as JavaScript's toISOString.
const timestampLayout = "2006-01-02T15:04:05.000Z07:00"

func newMessage(typ, username string, content *string) ChatMessage {
	return ChatMessage{Type: typ, Username: username, Content: content,
		Timestamp: time.Now().UTC().Format(timestampLayout)}
}

// chat serves one member of a room: it joins the room (the member sees its
// own "joined" first), publishes every message it sends to the whole room,
// and announces "left" to those still there when it goes.
func chat(rooms *wsroom.Rooms[ChatMessage]) wsroom.Handler[ClientMessage, ChatMessage] {
	return func(c *wsroom.Conn[ChatMessage], msgs iter.Seq2[ClientMessage, error]) error {
		r := c.Request()
		room := rooms.Room(r.PathValue("roomId"))
		username := r.URL.Query().Get("username")
		if username == "" {
			username = "Anonymous"
		}
		leave, err := room.Join(c, newMessage("joined", username, nil))
		if err != nil {
			return err
		}
		defer func() {
			leave()
			_ = room.Publish(newMessage("left", username, nil))
		}()
		for msg, err := range msgs {
			if err != nil {
				return err
			}
			if err := room.Publish(newMessage(msg.Type, username, msg.Content)); err != nil {
				return err
			}
		}
		return nil
	}
}

//go:embed static
var static embed.FS

// routes returns the chat's HTTP handler: the page at / and the WebSocket
// endpoint at /chat/room/{roomId}.
func routes(ep http.Handler) http.Handler {
	page, _ := fs.Sub(static, "static")
	mux := http.NewServeMux()
	mux.Handle("GET /chat/room/{roomId}", ep)
	mux.Handle("GET /", http.FileServerFS(page))
	return mux
}
