package main

import (
	"embed"
	"errors"
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

// ChatMessage is what every member of a room receives, and, of type
// "error", what the sender alone receives when its message did not reach
// the members on other instances: {"type":"error","error":"<reason>"},
// the shape of the endpoint's rejection of invalid input.
type ChatMessage struct {
	Type      string  `json:"type" jsonschema:"enum=message,enum=typing,enum=joined,enum=left,enum=error"`
	Username  string  `json:"username,omitempty"`
	Content   *string `json:"content,omitempty"`
	Timestamp string  `json:"timestamp,omitempty" jsonschema:"format=date-time"`
	Error     string  `json:"error,omitempty"`
}

// notRelayed is the reason sent to a member whose message reached only the
// members on its own instance, while the broker was unavailable.
const notRelayed = "your message reached only the members on this server: the broker linking the chat servers is unavailable"

// timestampLayout is RFC 3339 with milliseconds, as JavaScript's toISOString.
const timestampLayout = "2006-01-02T15:04:05.000Z07:00"

func newMessage(typ, username string, content *string) ChatMessage {
	return ChatMessage{Type: typ, Username: username, Content: content,
		Timestamp: time.Now().UTC().Format(timestampLayout)}
}

// chat serves one member of a room: it joins the room (the member sees its
// own "joined" first), publishes every message it sends to the whole room,
// and announces "left" to those still there when it goes. A broker outage
// never ends the connection: Join succeeds once the member is in the room
// locally, and a message that reached only this instance's members
// (wsroom.ErrBroker) earns its sender an error frame.
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
			err := room.Publish(newMessage(msg.Type, username, msg.Content))
			switch {
			case errors.Is(err, wsroom.ErrBroker):
				if msg.Type == "message" { // a lost typing signal is not worth a word
					_ = c.Send(ChatMessage{Type: "error", Error: notRelayed})
				}
			case err != nil:
				return err
			}
		}
		return nil
	}
}

//go:embed static
var static embed.FS

// routes returns the chat's HTTP handler: the page at /, the WebSocket
// endpoint at /chat/room/{roomId}, its AsyncAPI document at
// /asyncapi.json and, unless metrics is nil, metrics at /metrics.
func routes(ep, doc, metrics http.Handler) http.Handler {
	page, _ := fs.Sub(static, "static")
	mux := http.NewServeMux()
	mux.Handle(roomPattern, ep)
	mux.Handle("GET /asyncapi.json", doc)
	if metrics != nil {
		mux.Handle("GET /metrics", metrics)
	}
	mux.Handle("GET /", http.FileServerFS(page))
	return mux
}
