package wsroom_test

import (
	"iter"
	"net/http"

	"github.com/wsroom/wsroom"
)

// A member joins As its user name, with the message that announces it
// gone; the joiner is then sent who is here, on every instance, itself
// included. If its process dies, a surviving instance publishes its
// "left" once its lease has run out.
func ExampleRoom_Presence() {
	type In struct {
		Content string `json:"content"`
	}
	type User struct {
		Name        string `json:"username"`
		Connections int    `json:"connections"`
	}
	type Out struct {
		Type    string `json:"type"`
		User    string `json:"username,omitempty"`
		Users   []User `json:"users,omitempty"`
		Content string `json:"content,omitempty"`
	}

	rooms := wsroom.NewRooms[Out]()
	chat := wsroom.New(func(c *wsroom.Conn[Out], msgs iter.Seq2[In, error]) error {
		room := rooms.Room(c.Request().PathValue("room"))
		user := c.Request().URL.Query().Get("username")
		leave, err := room.Join(c, Out{Type: "joined", User: user},
			wsroom.As(user, nil),                            // present under the user's name: two tabs are one user
			wsroom.LeaveWith(Out{Type: "left", User: user})) // published when c leaves, or by a survivor
		if err != nil {
			return err // ErrPresenceFull or ErrPresenceEntryTooLarge too
		}
		defer leave()
		who, err := room.Presence(c.Context()) // sorted by key; on error, this instance's members
		if err != nil {
			return err
		}
		users := make([]User, 0, who.Len())
		for e := range who.All() {
			users = append(users, User{Name: e.Key, Connections: e.Connections})
		}
		_ = c.Send(Out{Type: "presence", Users: users})
		for msg, err := range msgs {
			if err != nil {
				return err
			}
			_ = room.Publish(Out{Type: "message", User: user, Content: msg.Content})
		}
		return nil
	})
	http.Handle("GET /chat/{room}", chat)
}
