package brokertest

import (
	"encoding/json"
	"fmt"
	"iter"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/wstest"
)

// recoveryCredit is how many messages RecoveryAcrossInstances' witnesses
// may have sent that the member has not read: half what a history keeps
// by default (wsroom.DefaultHistorySize), the rest a margin for the
// joins and leaves recorded meanwhile.
const recoveryCredit = wsroom.DefaultHistorySize / 2

// Event is what the recovery instances' clients receive: a recorded
// message with its position, or the recovery notice.
type Event struct {
	Seq       uint64 `json:"seq,omitempty"`
	Epoch     string `json:"epoch,omitempty"`
	Type      string `json:"type"`
	From      string `json:"from,omitempty"`
	N         int    `json:"n,omitempty"`
	Recovered bool   `json:"recovered,omitempty"` // the notice's
	Missed    int    `json:"missed,omitempty"`    // the notice's
}

// HistoryInstance is one wsroom process whose rooms keep their history
// through a HistoryBroker: at /{room}?name=NAME a client joins announcing
// "joined", every message it sends is recorded, and "left" is recorded
// once it has gone.
type HistoryInstance struct {
	Rooms *wsroom.Rooms[Event]
	URL   string
}

// StartHistoryInstance serves a history instance on a real socket until
// cleanup.
func StartHistoryInstance(t testing.TB, b wsroom.HistoryBroker) *HistoryInstance {
	t.Helper()
	in := &HistoryInstance{Rooms: wsroom.NewRooms[Event](wsroom.WithBroker(b), wsroom.WithHistory(0, 0))}
	ep := wsroom.New(func(c *wsroom.Conn[Event], msgs iter.Seq2[Event, error]) error {
		room := in.Rooms.Room(c.Request().PathValue("room"))
		name := c.Request().URL.Query().Get("name")
		leave, err := room.Join(c, Event{Type: "joined", From: name})
		if err != nil {
			return err
		}
		defer func() {
			leave()
			_ = room.Publish(Event{Type: "left", From: name})
		}()
		for msg, err := range msgs {
			if err != nil {
				return err
			}
			_ = room.Publish(Event{Type: "message", From: name, N: msg.N})
		}
		return nil
	}, wsroom.WithSendQueue(1<<16, 64<<20), wsroom.WithRateLimit(0, 0))
	in.URL = serve(t, ep)
	return in
}

// Dial connects name to room on the instance, resuming after since if it
// is not nil.
func (in *HistoryInstance) Dial(t testing.TB, room, name string, since *wsroom.Position) *Client {
	t.Helper()
	q := url.Values{"name": {name}}
	if since != nil {
		q.Set(wsroom.QuerySince, fmt.Sprint(since.Offset))
		q.Set(wsroom.QueryEpoch, since.Epoch)
	}
	return wstest.Dial(t, in.URL+"/"+room+"?"+q.Encode())
}

// NextEvent reads c's next frame.
func NextEvent(t testing.TB, c *Client) Event {
	t.Helper()
	data := c.Message(t)
	var ev Event
	if err := json.Unmarshal(data, &ev); err != nil {
		t.Fatalf("frame %q: %v", data, err)
	}
	return ev
}

// RecoveryAcrossInstances checks recovery on two wsroom instances joined
// by brokers from pair: while a client on each instance publishes, a
// member joins on one, drops, and reconnects alternately to the other
// instance from the last position it saw, rounds times. Every member
// receives every recorded message once, in one order; the reconnecting
// one, across its connections, receives each at the offset after the one
// before; and a fresh joiner's first frame is its own "joined".
//
// The witnesses never get more than recoveryCredit messages ahead of
// what the member has read, so that the gap each reconnection recovers
// stays within the 1,000 messages the history keeps however slow the
// member's reconnection is: a gap past it is rightly not recovered.
func RecoveryAcrossInstances(t *testing.T, pair HistoryPair, rounds int) {
	a, b := pair(t)
	A, B := StartHistoryInstance(t, a), StartHistoryInstance(t, b)
	instances := []*HistoryInstance{A, B}
	wa, wb := A.Dial(t, "r", "wa", nil), B.Dial(t, "r", "wb", nil)
	for _, w := range []*Client{wa, wb} {
		if ev := NextEvent(t, w); ev.Type != "joined" {
			t.Fatalf("a fresh joiner's first frame is %+v, not its own joined", ev)
		}
	}
	// Each witness sends up to 5 messages a millisecond, a load, each
	// with a credit that the member gives back once it has read it.
	credit := make(chan struct{}, recoveryCredit)
	for range recoveryCredit {
		credit <- struct{}{}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, w := range []*Client{wa, wb} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(time.Millisecond)
			defer tick.Stop()
			for n := 1; ; {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				for range 5 {
					select {
					case <-stop:
						return
					case <-credit:
					}
					if w.Conn().WriteString(fmt.Sprintf(`{"type":"message","n":%d}`, n)) != nil {
						return
					}
					n++
				}
			}
		}()
	}

	m := A.Dial(t, "r", "m", nil)
	first := NextEvent(t, m)
	if first.Type != "joined" || first.From != "m" {
		t.Fatalf("the member's first frame is %+v, not its own joined", first)
	}
	pos := wsroom.Position{Offset: first.Seq, Epoch: first.Epoch}
	seen := []Event{first}
	missed := 0 // what the notice announced: read all of it, then a few live ones
	for k := range rounds {
		for range missed + k%7 {
			ev := NextEvent(t, m)
			if ev.Seq != pos.Offset+1 || ev.Epoch != pos.Epoch {
				t.Fatalf("round %d: %+v after %+v", k, ev, pos)
			}
			pos.Offset = ev.Seq
			seen = append(seen, ev)
			if ev.Type == "message" {
				credit <- struct{}{} // never blocks: this message took one
			}
		}
		m.Close()
		m = instances[(k+1)%2].Dial(t, "r", "m", &pos)
		notice := NextEvent(t, m)
		if notice.Type != "recovery" || !notice.Recovered || notice.Epoch != pos.Epoch {
			in := instances[(k+1)%2].Rooms.Stats()
			t.Fatalf("round %d: reconnecting from %+v to instance %d: %+v (its broker errors %d, not recovered %d)",
				k, pos, (k+1)%2, notice, in.BrokerErrors, in.NotRecovered)
		}
		missed = notice.Missed
	}
	close(stop)
	wg.Wait()

	// A last message from each instance, then every member reads to it:
	// the two witnesses got the same events as the member, in one order.
	wa.Send(t, Event{Type: "message", N: -1})
	wb.Send(t, Event{Type: "message", N: -2})
	readTo := func(c *Client, from uint64, each func(Event)) {
		ends := 0
		for ends < 2 {
			ev := NextEvent(t, c)
			if ev.Seq <= from {
				continue
			}
			each(ev)
			if ev.N < 0 {
				ends++
			}
		}
	}
	readTo(m, pos.Offset, func(ev Event) {
		if ev.Seq != pos.Offset+1 {
			t.Fatalf("last connection: %+v after %+v", ev, pos)
		}
		pos.Offset = ev.Seq
		seen = append(seen, ev)
	})
	bySeq := make(map[uint64]Event, len(seen))
	for _, ev := range seen {
		bySeq[ev.Seq] = ev
	}
	for name, w := range map[string]*Client{"wa": wa, "wb": wb} {
		var last uint64
		readTo(w, 0, func(ev Event) {
			if last != 0 && ev.Seq != last+1 {
				t.Fatalf("%s: %+v after seq %d", name, ev, last)
			}
			last = ev.Seq
			if got, ok := bySeq[ev.Seq]; ok && got != ev {
				t.Fatalf("%s got %+v where the member got %+v", name, ev, got)
			}
		})
	}
	t.Logf("%d recorded messages seen by the member over %d connections, alternating instances", len(seen), rounds+1)
}
