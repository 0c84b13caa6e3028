package wsroom

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

type recordedMsg struct {
	Type string `json:"type"`
	Text string `json:"text,omitempty"`
}

// TestHistoryKeepsTheLastSizeMessagesForTheTTL drives a room's history on
// a clock of the test's: by count, the oldest go first; by age, each goes
// once it is older than the TTL; and an expired room with no members is
// forgotten, so it comes back in a new epoch.
func TestHistoryKeepsTheLastSizeMessagesForTheTTL(t *testing.T) {
	rooms := NewRooms[recordedMsg](WithHistory(10, time.Minute))
	hs := rooms.history
	var clock int64 = 1
	hs.now = func() int64 { return clock }
	room := rooms.Room("r")
	for i := range 25 {
		if err := room.Publish(recordedMsg{Type: "m", Text: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	h := hs.lock("r")
	epoch := h.epoch
	got, ok := hs.since(h, Position{Offset: 15, Epoch: epoch})
	if !ok || len(got) != 10 || got[0].offset != 16 || got[9].offset != 25 {
		t.Fatalf("since 15: %d messages from %v, ok %v; want 16 to 25", len(got), got, ok)
	}
	if _, ok := hs.since(h, Position{Offset: 14, Epoch: epoch}); ok {
		t.Fatal("since 14 recovered, but 15 was dropped by the size bound")
	}
	if _, ok := hs.since(h, Position{Offset: 26, Epoch: epoch}); ok {
		t.Fatal("a position ahead of the history recovered")
	}
	if got, ok := hs.since(h, Position{Offset: 25, Epoch: epoch}); !ok || len(got) != 0 {
		t.Fatalf("since the last: %d messages, ok %v; want none, recovered", len(got), ok)
	}
	h.mu.Unlock()

	clock += int64(30 * time.Second)
	_ = room.Publish(recordedMsg{Type: "m", Text: "young"})
	clock += int64(31 * time.Second) // the 25 are 61 s old, "young" 31 s
	h = hs.lock("r")
	if got, ok := hs.since(h, Position{Offset: 25, Epoch: epoch}); !ok || len(got) != 1 {
		t.Fatalf("since 25 after the old expired: %d messages, ok %v; want the young one", len(got), ok)
	}
	if _, ok := hs.since(h, Position{Offset: 24, Epoch: epoch}); ok {
		t.Fatal("since 24 recovered after 25 expired")
	}
	h.mu.Unlock()
	if n := rooms.Stats().HistoryBytes; n <= 0 || n > 200 {
		t.Fatalf("history bytes %d for one small message", n)
	}

	clock += int64(2 * time.Minute)                         // everything expired, nobody in the room
	_ = rooms.Room("other").Publish(recordedMsg{Type: "m"}) // a publish sweeps
	h = hs.lock("r")
	defer h.mu.Unlock()
	if h.epoch == epoch || h.last != 0 {
		t.Fatalf("after expiring whole: epoch %s (was %s), last %d; want a new history", h.epoch, epoch, h.last)
	}
}

// TestHistoryBytesAreBoundedAcrossManyRooms: past the registry's byte
// bound, the oldest messages go first, whatever their room.
func TestHistoryBytesAreBoundedAcrossManyRooms(t *testing.T) {
	const bound = 64 << 10
	rooms := NewRooms[recordedMsg](WithHistory(0, 0), WithHistoryBytes(bound))
	text := strings.Repeat("x", 200)
	var frame int64
	for r := range 100 {
		for range 100 {
			if err := rooms.Room(fmt.Sprint("room-", r)).Publish(recordedMsg{Type: "m", Text: text}); err != nil {
				t.Fatal(err)
			}
			if n := rooms.Stats().HistoryBytes; n > bound+frame {
				t.Fatalf("history bytes %d past the bound %d", n, bound)
			}
			if frame == 0 {
				frame = rooms.Stats().HistoryBytes
			}
		}
	}
	if n := rooms.Stats().HistoryBytes; n < bound-frame {
		t.Fatalf("history bytes %d: more was dropped than the bound asks", n)
	}
	hs := rooms.history
	for r, want := range map[int]bool{0: false, 99: true} {
		h := hs.lock(fmt.Sprint("room-", r))
		kept := len(h.entries) - h.start
		h.mu.Unlock()
		if (kept == 100) != want {
			t.Errorf("room-%d keeps %d of its 100 messages; the oldest rooms' messages should go first", r, kept)
		}
	}
}

func TestNewRoomsRefusesHistoriesThatCannotHold(t *testing.T) {
	type clashing struct {
		Seq  int    `json:"seq"`
		Type string `json:"type"`
	}
	type fine struct {
		Seq   uint64 `json:"seq,omitempty"`
		Epoch string `json:"epoch,omitempty"`
	}
	mustPanic := func(what string, f func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s: NewRooms did not panic", what)
			}
		}()
		f()
	}
	mustPanic("a seq field without omitempty", func() { NewRooms[clashing](WithHistory(0, 0)) })
	mustPanic("history with a broker", func() { NewRooms[fine](WithHistory(0, 0), WithBroker(nopBroker{})) })
	NewRooms[fine](WithHistory(0, 0))
	NewRooms[clashing]() // without history the field is the app's

	var notObject = NewRooms[string](WithHistory(0, 0))
	if err := notObject.Room("r").Publish("text"); err == nil || !strings.Contains(err.Error(), "JSON object") {
		t.Errorf("recording a string: %v, want the JSON object error", err)
	}
}

type nopBroker struct{}

func (nopBroker) Publish(string, []byte) error { return nil }
func (nopBroker) Subscribe(string, func([]byte)) (func(), <-chan struct{}) {
	return func() {}, nil
}
