package wsroom_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/wstest"
)

// TestMembersWhoStayReceiveEveryMessageOnceWhileOthersChurn keeps three
// real clients in a room while one goroutine publishes a numbered
// sequence, funcs join and leave by the hundred (so the room's set grows
// past its array and shrinks again, moving every member each time), and
// real clients join, see their own announcement first, and leave. Each
// client that stays must receive the sequence exactly: in order, nothing
// lost, nothing twice.
func TestMembersWhoStayReceiveEveryMessageOnceWhileOthersChurn(t *testing.T) {
	wstest.CheckGoroutines(t)
	const n = 3000
	rooms := wsroom.NewRooms[chatOut]()
	_, srv := serve(t, roomChat(rooms), wsroom.WithSendQueue(2*n, 1<<20))
	var stayers []*wstest.Client
	for i := range 3 {
		stayers = append(stayers, wstest.Dial(t, srv.URL+fmt.Sprintf("/ws/churn-set?name=stayer%d", i)))
	}
	wstest.WaitFor(t, "3 members", func() bool { return rooms.Room("churn-set").Len() == 3 })

	done := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			churnFuncs(rooms.Room("churn-set"), done)
		}()
	}
	go func() {
		defer close(done)
		room := rooms.Room("churn-set")
		for i := 1; i <= n; i++ {
			_ = room.Publish(chatOut{Type: "seq", Seq: i})
		}
	}()
joins:
	for i := 0; ; i++ {
		select {
		case <-done:
			break joins
		default:
		}
		name := fmt.Sprint("joiner", i)
		c := wstest.Dial(t, srv.URL+"/ws/churn-set?name="+name)
		var first chatOut
		c.JSON(t, &first)
		if first.Type != "joined" || first.Content != name {
			t.Fatalf("joiner %d: first frame %+v, want its own joined", i, first)
		}
		c.Close()
	}
	wg.Wait()
	for ci, c := range stayers {
		next := 1
		for next <= n {
			var out chatOut
			c.JSON(t, &out)
			if out.Type != "seq" {
				continue // announcements of the joiners
			}
			if out.Seq != next {
				t.Fatalf("stayer %d: got seq %d, want %d", ci, out.Seq, next)
			}
			next++
		}
	}
}

// churnFuncs subscribes funcs to room by the hundred and takes them out
// again, the newest first and then the oldest first, until done is
// closed.
func churnFuncs(room *wsroom.Room[chatOut], done <-chan struct{}) {
	for round := 0; ; round++ {
		select {
		case <-done:
			return
		default:
		}
		leaves := make([]func(), 0, 300)
		for range 300 {
			leave, _ := room.SubscribeFunc(func(chatOut) {})
			leaves = append(leaves, leave)
		}
		for i := range leaves {
			if round%2 == 0 {
				i = len(leaves) - 1 - i
			}
			leaves[i]()
		}
	}
}
