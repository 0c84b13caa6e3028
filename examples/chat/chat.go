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

// ChatMessage is what every member of a room receives; of type
// "presence", what a joiner alone receives right after its own "joined";
// and, of type "error", what the sender alone receives when its message did not reach
// every member: {"type":"error","error":"<reason>"}, the shape of the
// endpoint's rejection of invalid input. Seq and Epoch stay zero here: the
// room writes the position of a recorded event ("message", "joined",
// "left") in front of its fields, and "typing" has none.
type ChatMessage struct {
	Seq       uint64  `json:"seq,omitempty" jsonschema:"minimum=1"`
	Epoch     string  `json:"epoch,omitempty"`
	Type      string  `json:"type" jsonschema:"enum=message,enum=typing,enum=joined,enum=left,enum=presence,enum=error"`
	Username  string  `json:"username,omitempty"`
	Content   *string `json:"content,omitempty"`
	Timestamp string  `json:"timestamp,omitempty" jsonschema:"format=date-time"`
	Error     string  `json:"error,omitempty"`
	// Users, of a "presence" frame, is who is in the room on every
	// instance, sorted by username in byte order.
	Users []PresentUser `json:"users,omitempty"`
}

// PresentUser is one user in a room's presence: its connections (tabs) on
// every instance, counted.
type PresentUser struct {
	Username    string `json:"username"`
	Connections int    `json:"connections" jsonschema:"minimum=1"`
}

// The reasons of the error frames a sender (or joiner) alone receives
// while the broker is unavailable. Without history (a broker that keeps
// none) a message reaches this instance's members and no others; with
// history a message, or a joiner's announcement, that cannot be recorded
// reaches nobody, since it has no place in the room's order.
const (
	notRelayed      = "your message reached only the members on this server: the broker linking the chat servers is unavailable"
	notRecorded     = "your message was not sent: the broker keeping the chat's history is unavailable; send it again in a moment"
	joinNotRecorded = "you are in the room, but the others could not be told you joined: the broker keeping the chat's history is unavailable"
)

// timestampLayout is RFC 3339 with milliseconds, as JavaScript's toISOString.
const timestampLayout = "2006-01-02T15:04:05.000Z07:00"

func newMessage(typ, username string, content *string) ChatMessage {
	return ChatMessage{Type: typ, Username: username, Content: content,
		Timestamp: time.Now().UTC().Format(timestampLayout)}
}

// newRooms is the chat's room registry. Rooms keep a history (the last
// wsroom.DefaultHistorySize events, each for wsroom.DefaultHistoryTTL), so
// a member that reconnects recovers what it missed, whenever the positions
// can be one per room: without a broker (in-process), or with a broker
// that keeps the history itself (a wsroom.HistoryBroker: -nats, -redis,
// -postgres). Through any other broker rooms are joined without history.
// Presence spans the instances when the broker is a wsroom.PresenceBroker;
// opts add to these (the presence lease).
func newRooms(b wsroom.Broker, opts ...wsroom.RoomsOption) *wsroom.Rooms[ChatMessage] {
	if b == nil {
		return wsroom.NewRooms[ChatMessage](append(opts, wsroom.WithHistory(0, 0))...)
	}
	opts = append(opts, wsroom.WithBroker(b))
	if _, ok := b.(wsroom.HistoryBroker); ok {
		opts = append(opts, wsroom.WithHistory(0, 0))
	}
	return wsroom.NewRooms[ChatMessage](opts...)
}

// chat serves one member of a room: it joins the room present as its
// username (the member sees its own "joined" first, after what it missed
// if it reconnected with ?since=&epoch=, then who is in the room),
// publishes every message it sends to the whole room, a typing signal as
// an ephemeral event, and has the room announce "left" to those still
// there when it goes, or, should its instance die, a surviving instance
// announce it once its presence lease has run out. A broker outage never
// ends the connection: Join succeeds once the member is in the room
// locally, and a message that did not reach every member earns its sender
// an error frame.
func chat(rooms *wsroom.Rooms[ChatMessage]) wsroom.Handler[ClientMessage, ChatMessage] {
	return func(c *wsroom.Conn[ChatMessage], msgs iter.Seq2[ClientMessage, error]) error {
		r := c.Request()
		room := rooms.Room(r.PathValue("roomId"))
		username := r.URL.Query().Get("username")
		if username == "" {
			username = "Anonymous"
		}
		// "left" is fixed now, and may be published by another instance
		// long after: it carries no timestamp.
		leave, err := room.Join(c, newMessage("joined", username, nil), wsroom.As(username, nil),
			wsroom.LeaveWith(ChatMessage{Type: "left", Username: username}),
			wsroom.ThenSend(func() ChatMessage {
				users, _ := presentUsers(c.Context(), room)
				return ChatMessage{Type: "presence", Users: users}
			}))
		switch {
		case errors.Is(err, wsroom.ErrNotRecorded):
			// In the room all the same; the others could not be told.
			_ = c.Send(ChatMessage{Type: "error", Error: joinNotRecorded})
		case err != nil:
			return err
		}
		defer leave()
		for msg, err := range msgs {
			if err != nil {
				return err
			}
			if err := publish(c, room, newMessage(msg.Type, username, msg.Content)); err != nil {
				return err
			}
		}
		return nil
	}
}

// publish sends a member's message to its room: a chat message with
// Publish (recorded, when the rooms keep a history), a typing signal with
// PublishEphemeral. When the broker is unavailable the sender
// alone is told, and stays connected; a lost typing signal is not worth a
// word. The error is one the connection cannot go on after.
func publish(c *wsroom.Conn[ChatMessage], room *wsroom.Room[ChatMessage], m ChatMessage) error {
	if m.Type == "typing" {
		err := room.PublishEphemeral(m)
		if errors.Is(err, wsroom.ErrBroker) {
			return nil
		}
		return err
	}
	err := room.Publish(m)
	switch {
	case errors.Is(err, wsroom.ErrNotRecorded):
		_ = c.Send(ChatMessage{Type: "error", Error: notRecorded})
	case errors.Is(err, wsroom.ErrBroker):
		_ = c.Send(ChatMessage{Type: "error", Error: notRelayed})
	default:
		return err
	}
	return nil
}

//go:embed static
var static embed.FS

// routes returns the chat's HTTP handler: the page at /, the WebSocket
// endpoint at /chat/room/{roomId}, the room's presence at
// /chat/room/{roomId}/presence, its AsyncAPI document at
// /asyncapi.json and, unless metrics is nil, metrics at /metrics.
func routes(ep, presence, doc, metrics http.Handler) http.Handler {
	page, _ := fs.Sub(static, "static")
	mux := http.NewServeMux()
	mux.Handle(roomPattern, ep)
	mux.Handle(presencePattern, presence)
	mux.Handle("GET /asyncapi.json", doc)
	if metrics != nil {
		mux.Handle("GET /metrics", metrics)
	}
	mux.Handle("GET /", http.FileServerFS(page))
	return mux
}
