package wsroom_test

import (
	"context"
	"iter"
	"net/http"
	"time"

	"github.com/wsroom/wsroom"
)

// The joiner is told who is here right after its own "joined", with
// nothing of the room in between: with the "joined" and "left" that follow,
// its list stays current.
func ExampleThenSend() {
	type Out struct {
		Type  string   `json:"type"`
		User  string   `json:"username,omitempty"`
		Users []string `json:"users,omitempty"`
	}
	rooms := wsroom.NewRooms[Out]()
	chat := wsroom.New(func(c *wsroom.Conn[Out], msgs iter.Seq2[Out, error]) error {
		room := rooms.Room(c.Request().PathValue("room"))
		user := c.Request().URL.Query().Get("username")
		here := func() Out { // runs once user is present, before anything else reaches it
			ctx, cancel := context.WithTimeout(c.Context(), time.Second)
			defer cancel()
			who, _ := room.Presence(ctx) // on a broker error, this instance's members
			users := []string{}
			for e := range who.All() {
				users = append(users, e.Key)
			}
			return Out{Type: "presence", Users: users}
		}
		leave, err := room.Join(c, Out{Type: "joined", User: user}, wsroom.As(user, nil),
			wsroom.LeaveWith(Out{Type: "left", User: user}), wsroom.ThenSend(here))
		if err != nil {
			return err
		}
		defer leave()
		for _, err := range msgs {
			if err != nil {
				return err
			}
		}
		return nil
	})
	http.Handle("GET /rooms/{room}", chat)
}
