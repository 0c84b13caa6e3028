package wsroom_test

import (
	"encoding/json"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/wstest"
)

// histOut is a room message with its position, as clients decode it.
type histOut struct {
	Seq       uint64 `json:"seq,omitempty"`
	Epoch     string `json:"epoch,omitempty"`
	Type      string `json:"type"`
	Content   string `json:"content,omitempty"`
	Recovered bool   `json:"recovered,omitempty"` // the recovery notice's
	Missed    int    `json:"missed,omitempty"`
}

// historyChat joins the room of the path announcing "joined NAME", records
// what each member sends ("typing" is ephemeral), and announces "left NAME"
// once the member has left.
func historyChat(rooms *wsroom.Rooms[histOut]) wsroom.Handler[chatIn, histOut] {
	return func(c *wsroom.Conn[histOut], msgs iter.Seq2[chatIn, error]) error {
		room := rooms.Room(c.Request().PathValue("room"))
		name := c.Request().URL.Query().Get("name")
		leave, err := room.Join(c, histOut{Type: "joined", Content: name})
		if err != nil {
			return err
		}
		defer func() {
			leave()
			_ = room.Publish(histOut{Type: "left", Content: name})
		}()
		for msg, err := range msgs {
			if err != nil {
				return err
			}
			out := histOut{Type: msg.Type, Content: name + ":" + msg.Content}
			if msg.Type == "typing" {
				err = room.PublishEphemeral(out)
			} else {
				err = room.Publish(out)
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
}

// reconnectURL is the URL of room for name, resuming after pos.
func reconnectURL(base, room, name string, pos wsroom.Position) string {
	q := url.Values{"name": {name}, wsroom.QuerySince: {fmt.Sprint(pos.Offset)}, wsroom.QueryEpoch: {pos.Epoch}}
	return base + "/ws/" + room + "?" + q.Encode()
}

// next reads c's next frame as a histOut, keeping its bytes.
func next(t testing.TB, c *wstest.Client) (histOut, []byte) {
	t.Helper()
	data := c.Message(t)
	var m histOut
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("frame %q: %v", data, err)
	}
	return m, data
}

// waitRecorded waits until the registry has recorded n messages.
func waitRecorded(t testing.TB, rooms *wsroom.Rooms[histOut], n int64) {
	t.Helper()
	wstest.WaitFor(t, fmt.Sprintf("%d messages recorded", n), func() bool { return rooms.Stats().Recorded >= n })
}

func TestRecoveryReplaysExactlyWhatWasMissedThenTheLiveStream(t *testing.T) {
	for _, missed := range []int{1, 100, 999} {
		t.Run(fmt.Sprintf("missed=%d", missed), func(t *testing.T) {
			wstest.CheckGoroutines(t)
			rooms := wsroom.NewRooms[histOut](wsroom.WithHistory(0, 0))
			_, srv := serve(t, historyChat(rooms))
			witness := wstest.Dial(t, srv.URL+"/ws/r?name=w")
			next(t, witness) // joined w
			m := wstest.Dial(t, srv.URL+"/ws/r?name=m")
			joined, _ := next(t, m)
			next(t, witness) // joined m
			m.Close()
			waitRecorded(t, rooms, 3) // joined w, joined m, left m
			room := rooms.Room("r")
			for i := range missed - 1 { // m's own left is the first it missed
				if err := room.Publish(histOut{Type: "message", Content: fmt.Sprint(i)}); err != nil {
					t.Fatal(err)
				}
			}
			seen := make(map[uint64][]byte) // the witness's frames, by seq
			for range missed {
				w, data := next(t, witness)
				seen[w.Seq] = data
			}

			back := wstest.Dial(t, reconnectURL(srv.URL, "r", "m", wsroom.Position{Offset: joined.Seq, Epoch: joined.Epoch}))
			notice, _ := next(t, back)
			if notice.Type != "recovery" || !notice.Recovered || notice.Epoch != joined.Epoch || notice.Missed != missed {
				t.Fatalf("notice %+v, want recovered, epoch %s, %d missed", notice, joined.Epoch, missed)
			}
			for i := range missed {
				got, data := next(t, back)
				if want := joined.Seq + 1 + uint64(i); got.Seq != want || string(data) != string(seen[want]) {
					t.Fatalf("replayed frame %d is %s, want seq %d as the witness got it: %s", i, data, want, seen[want])
				}
			}
			own, _ := next(t, back)
			if own.Type != "joined" || own.Seq != joined.Seq+uint64(missed)+1 {
				t.Fatalf("after the replay: %+v, want its own joined at seq %d", own, joined.Seq+uint64(missed)+1)
			}
			witness.Send(t, chatIn{Type: "message", Content: "live"})
			live, _ := next(t, back)
			if live.Content != "w:live" || live.Seq != own.Seq+1 {
				t.Fatalf("live: %+v, want w:live at seq %d", live, own.Seq+1)
			}
			if st := rooms.Stats(); st.Recovered != 1 || st.NotRecovered != 0 {
				t.Errorf("stats %+v, want 1 recovered", st)
			}
		})
	}
}

func TestRecoveryFailsPlainlyWhenTheHistoryNoLongerCoversTheGap(t *testing.T) {
	wstest.CheckGoroutines(t)
	rooms := wsroom.NewRooms[histOut](wsroom.WithHistory(0, 0))
	_, srv := serve(t, historyChat(rooms))
	m := wstest.Dial(t, srv.URL+"/ws/r?name=m")
	joined, _ := next(t, m)
	m.Close()
	waitRecorded(t, rooms, 2)
	for i := range 1000 { // with m's left, 1,001 missed: one more than is kept
		_ = rooms.Room("r").Publish(histOut{Type: "message", Content: fmt.Sprint(i)})
	}
	back := wstest.Dial(t, reconnectURL(srv.URL, "r", "m", wsroom.Position{Offset: joined.Seq, Epoch: joined.Epoch}))
	notice, _ := next(t, back)
	if notice.Type != "recovery" || notice.Recovered || notice.Missed != 0 || notice.Epoch != joined.Epoch {
		t.Fatalf("notice %+v, want not recovered, 0 missed, epoch %s", notice, joined.Epoch)
	}
	own, _ := next(t, back)
	if own.Type != "joined" || own.Seq != joined.Seq+1002 {
		t.Fatalf("first frame after the notice: %+v, want its own joined at seq %d", own, joined.Seq+1002)
	}
	if st := rooms.Stats(); st.NotRecovered != 1 || st.Recovered != 0 {
		t.Errorf("stats %+v, want 1 not recovered", st)
	}
}

func TestRecoveryFromAnotherEpochOrAfterARestartIsRefused(t *testing.T) {
	wstest.CheckGoroutines(t)
	before := wsroom.NewRooms[histOut](wsroom.WithHistory(0, 0))
	_, first := serve(t, historyChat(before))
	m := wstest.Dial(t, first.URL+"/ws/r?name=m")
	joined, _ := next(t, m)
	m.Close()

	// The process restarts: a new registry, with no broker to keep the
	// room's history.
	after := wsroom.NewRooms[histOut](wsroom.WithHistory(0, 0))
	_, second := serve(t, historyChat(after))
	for _, pos := range []wsroom.Position{
		{Offset: joined.Seq, Epoch: joined.Epoch}, // the old process's epoch
		{Offset: 0, Epoch: "not-an-epoch"},
	} {
		back := wstest.Dial(t, reconnectURL(second.URL, "r", "m", pos))
		notice, _ := next(t, back)
		if notice.Type != "recovery" || notice.Recovered || notice.Missed != 0 || notice.Epoch == joined.Epoch || notice.Epoch == "" {
			t.Fatalf("since %+v: notice %+v, want not recovered in a new epoch", pos, notice)
		}
		own, _ := next(t, back)
		if own.Type != "joined" || own.Epoch != notice.Epoch {
			t.Fatalf("since %+v: %+v after the notice, want its own joined in epoch %s", pos, own, notice.Epoch)
		}
		back.Close()
	}
}

func TestWithoutSinceTheJoinersOwnAnnouncementIsFirst(t *testing.T) {
	wstest.CheckGoroutines(t)
	rooms := wsroom.NewRooms[histOut](wsroom.WithHistory(0, 0))
	_, srv := serve(t, historyChat(rooms))
	for i := range 3 {
		_ = rooms.Room("r").Publish(histOut{Type: "message", Content: fmt.Sprint(i)})
	}
	c := wstest.Dial(t, srv.URL+"/ws/r?name=c")
	first, _ := next(t, c)
	if first.Type != "joined" || first.Seq != 4 || first.Epoch == "" {
		t.Fatalf("first frame %+v, want joined at seq 4 with an epoch", first)
	}
}

func TestMalformedPositionsAreRefusedWith400BeforeTheUpgrade(t *testing.T) {
	wstest.CheckGoroutines(t)
	rooms := wsroom.NewRooms[histOut](wsroom.WithHistory(0, 0))
	_, srv := serve(t, historyChat(rooms))
	for _, query := range []string{
		"since=-1&epoch=e", "since=abc&epoch=e", "since=1.5&epoch=e", "since=&epoch=e",
		"since=18446744073709551616&epoch=e", "since=1", "since=1&epoch=",
	} {
		c, status, err := wstest.TryDial(srv.URL + "/ws/r?name=x&" + query)
		if err == nil {
			c.Close()
		}
		if status != http.StatusBadRequest {
			t.Errorf("?%s: status %d (%v), want 400", query, status, err)
		}
	}
	if n := rooms.Stats().Recorded; n != 0 {
		t.Errorf("%d messages recorded: a refused upgrade ran the handler", n)
	}
}

func TestEphemeralMessagesAreDeliveredButNeverRecordedOrReplayed(t *testing.T) {
	wstest.CheckGoroutines(t)
	rooms := wsroom.NewRooms[histOut](wsroom.WithHistory(0, 0))
	_, srv := serve(t, historyChat(rooms))
	w := wstest.Dial(t, srv.URL+"/ws/r?name=w")
	next(t, w)
	m := wstest.Dial(t, srv.URL+"/ws/r?name=m")
	joined, _ := next(t, m)
	next(t, w) // joined m
	w.Send(t, chatIn{Type: "typing"})
	typing, data := next(t, m)
	if typing.Type != "typing" || typing.Seq != 0 || typing.Epoch != "" {
		t.Fatalf("typing arrived as %s, want no position", data)
	}
	m.Close()
	waitRecorded(t, rooms, 3)
	w.Send(t, chatIn{Type: "typing"})
	w.Send(t, chatIn{Type: "message", Content: "recorded"})
	waitRecorded(t, rooms, 4)

	back := wstest.Dial(t, reconnectURL(srv.URL, "r", "m", wsroom.Position{Offset: joined.Seq, Epoch: joined.Epoch}))
	notice, _ := next(t, back)
	if !notice.Recovered || notice.Missed != 2 {
		t.Fatalf("notice %+v, want 2 missed: its left and the message, not the typing", notice)
	}
	for _, want := range []string{"left", "message"} {
		if got, data := next(t, back); got.Type != want {
			t.Fatalf("replayed %s, want %s", data, want)
		}
	}
}

func TestHistoryExpiresByAge(t *testing.T) {
	wstest.CheckGoroutines(t)
	const ttl = 50 * time.Millisecond
	rooms := wsroom.NewRooms[histOut](wsroom.WithHistory(0, ttl))
	_, srv := serve(t, historyChat(rooms))
	w := wstest.Dial(t, srv.URL+"/ws/r?name=w") // keeps the room, and its epoch, alive
	joined, _ := next(t, w)
	published := time.Now() // before the record: the lower bound below must not count the delivery's delay
	_ = rooms.Room("r").Publish(histOut{Type: "message", Content: "old"})
	next(t, w)
	wstest.WaitFor(t, "the message to expire", func() bool {
		c := wstest.Dial(t, reconnectURL(srv.URL, "r", "m", wsroom.Position{Offset: joined.Seq, Epoch: joined.Epoch}))
		defer c.Close()
		notice, _ := next(t, c)
		if notice.Recovered && time.Since(published) > 10*ttl {
			t.Fatalf("recovered %v after the message was recorded, with a TTL of %v", time.Since(published), ttl)
		}
		return !notice.Recovered
	})
	if age := time.Since(published); age < ttl {
		t.Fatalf("not recovered %v after the message, before its TTL of %v", age, ttl)
	}
}

// TestOneOrderPerRoomUnderConcurrentPublishers: every member receives the
// room's recorded messages in the same order, with consecutive positions.
func TestOneOrderPerRoomUnderConcurrentPublishers(t *testing.T) {
	wstest.CheckGoroutines(t)
	rooms := wsroom.NewRooms[histOut](wsroom.WithHistory(0, 0))
	_, srv := serve(t, historyChat(rooms))
	members := []*wstest.Client{wstest.Dial(t, srv.URL+"/ws/r?name=a")}
	next(t, members[0])
	members = append(members, wstest.Dial(t, srv.URL+"/ws/r?name=b"))
	next(t, members[1])
	next(t, members[0])
	const publishers, each = 4, 500
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				_ = rooms.Room("r").Publish(histOut{Type: "message", Content: fmt.Sprint(p, "/", i)})
			}
		}()
	}
	wg.Wait()
	var orders [2][]string
	for k, c := range members {
		last := uint64(2) // both have seen b's joined, at seq 2
		for range publishers * each {
			m, data := next(t, c)
			if m.Seq != last+1 {
				t.Fatalf("member %d: %s after seq %d", k, data, last)
			}
			last = m.Seq
			orders[k] = append(orders[k], m.Content)
		}
	}
	for i := range orders[0] {
		if orders[0][i] != orders[1][i] {
			t.Fatalf("message %d: %q for one member, %q for the other", i, orders[0][i], orders[1][i])
		}
	}
}

// TestRecoveryIsExactlyOnceAcrossAHundredReconnectsUnderLoad: while a
// publisher publishes at full speed, a member drops and reconnects 100
// times, each time from the last position it saw. Across its connections
// it receives every recorded message of the room exactly once, in order:
// each frame's seq is the one after the last.
func TestRecoveryIsExactlyOnceAcrossAHundredReconnectsUnderLoad(t *testing.T) {
	wstest.CheckGoroutines(t)
	rooms := wsroom.NewRooms[histOut](wsroom.WithHistory(1<<20, 0))
	_, srv := serve(t, historyChat(rooms), wsroom.WithSendQueue(1<<20, 1<<30))
	room := rooms.Room("r")
	stop := make(chan struct{})
	var published sync.WaitGroup
	published.Add(1)
	go func() {
		defer published.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			_ = room.Publish(histOut{Type: "message", Content: fmt.Sprint(i)})
		}
	}()

	c := wstest.Dial(t, srv.URL+"/ws/r?name=m")
	first, _ := next(t, c)
	pos := wsroom.Position{Offset: first.Seq, Epoch: first.Epoch}
	received := 1
	for k := range 100 {
		for range k % 17 { // read a few, then drop the connection mid-stream
			m, data := next(t, c)
			if m.Seq != pos.Offset+1 || m.Epoch != pos.Epoch {
				t.Fatalf("connection %d: %s after seq %d", k, data, pos.Offset)
			}
			pos.Offset = m.Seq
			received++
		}
		c.Close()
		c = wstest.Dial(t, reconnectURL(srv.URL, "r", "m", pos))
		if notice, data := next(t, c); notice.Type != "recovery" || !notice.Recovered {
			t.Fatalf("reconnect %d from %+v: %s", k, pos, data)
		}
	}
	close(stop)
	published.Wait()
	// The last connection reads to the end of what was recorded.
	last := uint64(rooms.Stats().Recorded)
	for pos.Offset < last {
		m, data := next(t, c)
		if m.Seq != pos.Offset+1 {
			t.Fatalf("last connection: %s after seq %d", data, pos.Offset)
		}
		pos.Offset = m.Seq
		received++
	}
	t.Logf("%d recorded messages, every one received once in order over 101 connections", received)
}
