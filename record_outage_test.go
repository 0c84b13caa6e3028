package wsroom_test

import (
	"errors"
	"iter"
	"testing"
	"time"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/brokertest"
	"github.com/wsroom/wsroom/internal/wstest"
)

// TestJoinThroughADownHistoryBrokerSaysTheAnnouncementWasNotRecorded: the
// announcement has no position, so it reaches nobody, the joiner
// included; Join's error wraps ErrNotRecorded, the joiner is in the room
// all the same, and once the broker is back it receives what is recorded.
func TestJoinThroughADownHistoryBrokerSaysTheAnnouncementWasNotRecorded(t *testing.T) {
	wstest.CheckGoroutines(t)
	bus := brokertest.NewMemoryHistory(100)
	rooms := wsroom.NewRooms[histOut](wsroom.WithBroker(bus.Broker()), wsroom.WithHistory(100, time.Minute))
	joinErrs := make(chan error, 1)
	_, srv := serve(t, func(c *wsroom.Conn[histOut], msgs iter.Seq2[chatIn, error]) error {
		room := rooms.Room("r")
		leave, err := room.Join(c, histOut{Type: "joined", Content: "c"}, wsroom.As("c", nil))
		joinErrs <- err
		if err != nil && !errors.Is(err, wsroom.ErrNotRecorded) {
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
	bus.SetDown(true)
	c := wstest.Dial(t, srv.URL+"/ws/r")
	select {
	case err := <-joinErrs:
		if !errors.Is(err, wsroom.ErrNotRecorded) {
			t.Fatalf("Join through a down broker: %v, want an error wrapping ErrNotRecorded", err)
		}
	case <-time.After(wstest.Timeout):
		t.Fatal("the handler never joined")
	}
	room := rooms.Room("r")
	if n := room.Len(); n != 1 {
		t.Fatalf("room holds %d members after the unrecorded join, want the joiner", n)
	}
	p, err := room.Presence(t.Context())
	if err != nil || p.Len() != 1 {
		t.Fatalf("presence after the unrecorded join: %d entries, %v; want the joiner", p.Len(), err)
	}
	if got := rooms.Stats().BrokerErrors; got == 0 {
		t.Fatal("the unrecorded announcement is not counted in BrokerErrors")
	}
	bus.SetDown(false)
	if err := room.Publish(histOut{Type: "message", Content: "after"}); err != nil {
		t.Fatal(err)
	}
	first, raw := next(t, c)
	if first.Type != "message" || first.Content != "after" || first.Seq != 1 {
		t.Fatalf("the joiner's first frame %s, want the first recorded message (its announcement reached nobody)", raw)
	}
}
