package wsroom

import (
	"iter"
	"sync/atomic"
)

// A room's subscribers live in an array of slots that the room's
// snapshots share. A join appends to the array, past the end of every
// snapshot made before it; a leave clears the subscriber's own slot, whose
// index the subscriber keeps. Either makes a new snapshot, a few words
// long, and stores it: Publish loads it and reads its slots without a
// lock, while the room's lock serialises the changes. A slot is taken
// once per array and never reused, so a snapshot never yields a
// subscriber that joined after it was made.
//
// A new array, holding only the subscribers still in, replaces the old
// one when a join finds it full or a leave finds it three quarters empty;
// it has room for as many again. Each such copy follows at least as many
// joins or leaves as it copies: joining and leaving cost O(1), amortised,
// at 50,000 members as at 5. Snapshots made before the copy keep the old
// array, which no one changes any more.

// minSlots is the smallest array of slots a room allocates.
const minSlots = 8

// members is a snapshot of a room's subscribers; nil means the room is not
// in the registry. A room's stored snapshot is empty only while its first
// subscribers wait for the broker: otherwise the last subscriber to leave
// stores nil.
type members[M any] struct {
	// slots are those taken when the snapshot was made; one whose
	// subscriber has left since holds nil.
	slots []atomic.Pointer[subscriber[M]]
	live  int // subscribers in slots when the snapshot was made
	conns int // how many of those are connections
}

// all yields the subscribers in the snapshot that have not left.
func (set *members[M]) all() iter.Seq[*subscriber[M]] {
	return func(yield func(*subscriber[M]) bool) {
		slots := set.slots
		for i := range slots {
			if s := slots[i].Load(); s != nil && !yield(s) {
				return
			}
		}
	}
}

// deliver hands one message to every subscriber in the snapshot.
func (set *members[M]) deliver(m M, frame []byte) {
	for s := range set.all() {
		switch {
		case s.member == nil:
			s.fn(m)
		case !s.awaiting.Load():
			_ = s.member.conn.enqueue(frame)
		}
	}
}

// with returns the snapshot that adds s to set. The room's lock is held.
func (set *members[M]) with(s *subscriber[M]) *members[M] {
	slots := set.slots
	if len(slots) == cap(slots) {
		slots = renumbered(slots, set.live+1)
	}
	s.slot = len(slots)
	slots = slots[:s.slot+1]
	slots[s.slot].Store(s)
	next := &members[M]{slots: slots, live: set.live + 1, conns: set.conns}
	if s.member != nil {
		next.conns++
	}
	return next
}

// without returns the snapshot that takes s out of set; s is in set's
// slots. The room's lock is held.
func (set *members[M]) without(s *subscriber[M]) *members[M] {
	set.slots[s.slot].Store(nil)
	next := &members[M]{slots: set.slots, live: set.live - 1, conns: set.conns}
	if s.member != nil {
		next.conns--
	}
	if len(next.slots) > minSlots && next.live < len(next.slots)/4 {
		next.slots = renumbered(next.slots, next.live)
	}
	return next
}

// renumbered copies the subscribers still in slots to the front of a new
// array with room for 2n (n at least their number), and gives each its new
// index. The room's lock is held.
func renumbered[M any](slots []atomic.Pointer[subscriber[M]], n int) []atomic.Pointer[subscriber[M]] {
	next := make([]atomic.Pointer[subscriber[M]], 0, max(2*n, minSlots))
	for i := range slots {
		if s := slots[i].Load(); s != nil {
			s.slot = len(next)
			next = next[:s.slot+1]
			next[s.slot].Store(s)
		}
	}
	return next
}
