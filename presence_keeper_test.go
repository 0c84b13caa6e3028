package wsroom_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/brokertest"
	"github.com/wsroom/wsroom/internal/wstest"
)

// keeper is a PresenceBroker that says whether it keeps presence, and
// counts the presence calls made to it.
type keeper struct {
	wsroom.PresenceBroker
	keeps bool
	puts  atomic.Int64
}

func (k *keeper) KeepsPresence() bool { return k.keeps }

func (k *keeper) PutPresence(room string, entries []wsroom.PresenceRecord, lease time.Duration) error {
	k.puts.Add(1)
	return k.PresenceBroker.PutPresence(room, entries, lease)
}

// A broker whose KeepsPresence is false is not used for presence: a
// member that joins As a key is present on its own instance alone, with
// no error, and nothing reaches the broker's presence.
func TestABrokerThatKeepsNoPresenceIsNotUsedForIt(t *testing.T) {
	wstest.CheckGoroutines(t)
	bus := brokertest.NewMemoryPresence()
	for _, keeps := range []bool{false, true} {
		k := &keeper{PresenceBroker: bus.Broker(), keeps: keeps}
		in := brokertest.StartPresenceInstance(t, k, brokertest.TestLease)
		c := brokertest.DialPresence(t, in.URL, "r", "ann")
		p, err := in.Rooms.Room("r").Presence(context.Background())
		if err != nil || p.Len() != 1 {
			t.Fatalf("keeps %v: Presence has %d keys, %v; want ann alone, no error", keeps, p.Len(), err)
		}
		c.Close()
		wstest.WaitFor(t, "ann to leave", func() bool { return in.Rooms.Stats().Present == 0 })
		if got := k.puts.Load() > 0; got != keeps {
			t.Fatalf("keeps %v: %d presence puts reached the broker", keeps, k.puts.Load())
		}
	}
}
