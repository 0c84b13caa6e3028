package wsroom_test

import (
	"encoding/json"
	"fmt"
	"iter"
	"net/url"
	"sync"
	"testing"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/brokertest"
	"github.com/wsroom/wsroom/internal/wstest"
)

// thenOut is what the ThenSend tests' members receive; Seq and Epoch are
// the position of a recorded one.
type thenOut struct {
	Seq   uint64 `json:"seq,omitempty"`
	Epoch string `json:"epoch,omitempty"`
	Type  string `json:"type"`
	User  string `json:"user,omitempty"`
}

// thenServer serves rooms at /ws/{room}?user=NAME: a member joins As user
// announcing "joined", and is then sent "then" with User "present" if the
// presence its ThenSend func read lists it. What a member sends is
// published, recorded or, of type "typing", ephemeral.
func thenServer(t testing.TB, rooms *wsroom.Rooms[thenOut]) string {
	t.Helper()
	_, srv := serve(t, func(c *wsroom.Conn[thenOut], msgs iter.Seq2[thenOut, error]) error {
		room := rooms.Room(c.Request().PathValue("room"))
		user := c.Request().URL.Query().Get("user")
		leave, err := room.Join(c, thenOut{Type: "joined", User: user}, wsroom.As(user, nil),
			wsroom.ThenSend(func() thenOut {
				p, _ := room.Presence(c.Context())
				if _, ok := p.Get(user); ok {
					return thenOut{Type: "then", User: "present"}
				}
				return thenOut{Type: "then", User: "absent"}
			}))
		if err != nil {
			return err
		}
		defer leave()
		for msg, err := range msgs {
			if err != nil {
				return err
			}
			if msg.Type == "typing" {
				_ = room.PublishEphemeral(msg)
			} else {
				_ = room.Publish(msg)
			}
		}
		return nil
	}, wsroom.WithRateLimit(0, 0))
	return srv.URL
}

func nextThen(t testing.TB, c *wstest.Client) thenOut {
	t.Helper()
	var m thenOut
	c.JSON(t, &m)
	return m
}

// TestThenSendComesRightAfterTheAnnouncementWhileOthersPublish: two
// members publish recorded and ephemeral messages as fast as they can
// while others join; every joiner's first frame is its own joined and its
// second the ThenSend message, which saw it present. Without history, with
// history in the process, and with a HistoryBroker.
func TestThenSendComesRightAfterTheAnnouncementWhileOthersPublish(t *testing.T) {
	for name, rooms := range map[string]func() *wsroom.Rooms[thenOut]{
		"no history": func() *wsroom.Rooms[thenOut] { return wsroom.NewRooms[thenOut]() },
		"history":    func() *wsroom.Rooms[thenOut] { return wsroom.NewRooms[thenOut](wsroom.WithHistory(0, 0)) },
		"history broker": func() *wsroom.Rooms[thenOut] {
			b := brokertest.NewMemoryHistory(1000).Broker()
			return wsroom.NewRooms[thenOut](wsroom.WithBroker(b), wsroom.WithHistory(0, 0))
		},
	} {
		t.Run(name, func(t *testing.T) {
			wstest.CheckGoroutines(t)
			base := thenServer(t, rooms())
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for _, typ := range []string{"message", "typing"} {
				p := wstest.Dial(t, base+"/ws/r?user=pub-"+typ)
				wg.Add(1)
				go func() { // floods the room until the joins are checked
					defer wg.Done()
					for {
						select {
						case <-stop:
							return
						default:
							if err := p.Conn().WriteString(`{"type":"` + typ + `"}`); err != nil {
								return
							}
						}
					}
				}()
				defer p.Close()
			}
			for i := range 40 {
				user := fmt.Sprintf("j%d", i)
				c := wstest.Dial(t, base+"/ws/r?"+url.Values{"user": {user}}.Encode())
				if m := nextThen(t, c); m.Type != "joined" || m.User != user {
					t.Fatalf("%s's first frame is %+v, not its own joined", user, m)
				}
				if m := nextThen(t, c); m != (thenOut{Type: "then", User: "present"}) {
					t.Fatalf("%s's second frame is %+v, not its ThenSend message seeing it present", user, m)
				}
				c.Close()
			}
			close(stop)
			wg.Wait()
		})
	}
}

// TestThenSendFollowsTheReplayAndTheAnnouncementOfARecovery: a member that
// reconnects with its position gets the notice, what it missed, its own
// joined, then the ThenSend message.
func TestThenSendFollowsTheReplayAndTheAnnouncementOfARecovery(t *testing.T) {
	for name, rooms := range map[string]func() *wsroom.Rooms[thenOut]{
		"history": func() *wsroom.Rooms[thenOut] { return wsroom.NewRooms[thenOut](wsroom.WithHistory(0, 0)) },
		"history broker": func() *wsroom.Rooms[thenOut] {
			b := brokertest.NewMemoryHistory(1000).Broker()
			return wsroom.NewRooms[thenOut](wsroom.WithBroker(b), wsroom.WithHistory(0, 0))
		},
	} {
		t.Run(name, func(t *testing.T) {
			wstest.CheckGoroutines(t)
			base := thenServer(t, rooms())
			stay := wstest.Dial(t, base+"/ws/r?user=stay")
			defer stay.Close()
			nextThen(t, stay)
			nextThen(t, stay)
			ann := wstest.Dial(t, base+"/ws/r?user=ann")
			own := nextThen(t, ann)
			nextThen(t, ann)
			ann.Close()
			nextThen(t, stay) // ann's joined
			stay.Send(t, thenOut{Type: "message", User: "while away"})
			missed := nextThen(t, stay)

			q := url.Values{"user": {"ann"}, wsroom.QuerySince: {fmt.Sprint(own.Seq)}, wsroom.QueryEpoch: {own.Epoch}}
			back := wstest.Dial(t, base+"/ws/r?"+q.Encode())
			defer back.Close()
			var notice struct {
				Type      string
				Recovered bool
				Missed    int
			}
			if err := json.Unmarshal(back.Message(t), &notice); err != nil || notice.Type != "recovery" || !notice.Recovered || notice.Missed != 1 {
				t.Fatalf("first frame %+v (%v), want the notice of 1 recovered", notice, err)
			}
			if m := nextThen(t, back); m != missed {
				t.Fatalf("replayed %+v, want %+v", m, missed)
			}
			if m := nextThen(t, back); m.Type != "joined" || m.User != "ann" {
				t.Fatalf("after the replay %+v, want ann's joined", m)
			}
			if m := nextThen(t, back); m != (thenOut{Type: "then", User: "present"}) {
				t.Fatalf("after the joined %+v, want the ThenSend message", m)
			}
		})
	}
}

// TestThenSendOfAnotherTypeFailsTheJoin: ThenSend's func must give the
// room's message type.
func TestThenSendOfAnotherTypeFailsTheJoin(t *testing.T) {
	wstest.CheckGoroutines(t)
	rooms := wsroom.NewRooms[thenOut]()
	errs := make(chan error, 1)
	_, srv := serve(t, func(c *wsroom.Conn[thenOut], msgs iter.Seq2[thenOut, error]) error {
		_, err := rooms.Room("r").Join(c, thenOut{Type: "joined"}, wsroom.ThenSend(func() string { return "x" }))
		errs <- err
		return nil
	})
	c := wstest.Dial(t, srv.URL+"/ws/r")
	defer c.Close()
	if err := <-errs; err == nil {
		t.Fatal("Join with ThenSend of a string in a room of thenOut succeeded")
	}
	if n := rooms.Room("r").Len(); n != 0 {
		t.Fatalf("the room has %d members after a refused join", n)
	}
}
