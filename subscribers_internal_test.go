package wsroom

import (
	"math/rand/v2"
	"runtime"
	"testing"
)

// checkSlots fails t unless the room's snapshot holds exactly want, each
// subscriber at the index it keeps, in an array at most four times as long
// as the room (or minSlots): what Publish reads stays in proportion to the
// room.
func checkSlots(t *testing.T, room *Room[int], want map[*subscriber[int]]bool) {
	t.Helper()
	set := room.set.Load()
	if len(want) == 0 {
		if set != nil {
			t.Fatalf("empty room keeps a snapshot of %d", set.live)
		}
		return
	}
	got := 0
	for i := range set.slots {
		s := set.slots[i].Load()
		if s == nil {
			continue
		}
		if !want[s] || s.slot != i {
			t.Fatalf("slot %d holds a subscriber that is not in the room or keeps index %d", i, s.slot)
		}
		got++
	}
	if got != len(want) || set.live != got || room.Len() != got {
		t.Fatalf("%d subscribers in the slots, live %d, Len %d; want %d", got, set.live, room.Len(), len(want))
	}
	if n := len(set.slots); n > minSlots && n > 4*got+3 {
		t.Fatalf("%d slots for %d subscribers", n, got)
	}
}

// TestSubscriberSetFollowsRandomJoinsAndLeaves joins and leaves at random,
// in runs that grow the room to thousands and shrink it to a few, and
// checks after every step that the slots hold exactly the subscribers in,
// and that a publish reaches each of them once and nobody else.
func TestSubscriberSetFollowsRandomJoinsAndLeaves(t *testing.T) {
	room := NewRooms[int]().Room("model")
	rng := rand.New(rand.NewPCG(1, 2))
	in := map[*subscriber[int]]bool{}
	leaves := map[*subscriber[int]]func(){}
	var order []*subscriber[int]
	got := map[int]int{} // subscriber number → messages received
	next := 0
	for step := range 8000 {
		growing := (step/1000)%2 == 0
		if len(order) == 0 || (growing && rng.IntN(10) < 8) || (!growing && rng.IntN(10) < 2) {
			id := next
			next++
			leave, err := room.SubscribeFunc(func(int) { got[id]++ })
			if err != nil {
				t.Fatal(err)
			}
			s := room.set.Load().slots[len(room.set.Load().slots)-1].Load()
			in[s], leaves[s] = true, leave
			order = append(order, s)
		} else {
			i := rng.IntN(len(order))
			s := order[i]
			order[i] = order[len(order)-1]
			order = order[:len(order)-1]
			leaves[s]()
			delete(in, s)
		}
		checkSlots(t, room, in)
		if step%97 == 0 {
			clear(got)
			_ = room.Publish(step)
			if len(got) != len(in) {
				t.Fatalf("step %d: %d subscribers received the publish, want %d", step, len(got), len(in))
			}
			for id, n := range got {
				if n != 1 {
					t.Fatalf("step %d: subscriber %d received it %d times", step, id, n)
				}
			}
		}
	}
	for _, s := range order {
		leaves[s]()
	}
	checkSlots(t, room, nil)
}

// TestSnapshotNeverYieldsALaterJoiner takes a snapshot, then grows the
// room past its array (which moves every subscriber to a new one) and
// empties it: the snapshot yields its own members, those that left
// before the move excepted, and never one that joined after it.
func TestSnapshotNeverYieldsALaterJoiner(t *testing.T) {
	room := NewRooms[int]().Room("snapshot")
	var leaves []func()
	for range 5 {
		leave, _ := room.SubscribeFunc(func(int) {})
		leaves = append(leaves, leave)
	}
	old := room.set.Load()
	leaves[0]() // before the move: old sees it gone
	var mine []*subscriber[int]
	for s := range old.all() {
		mine = append(mine, s)
	}
	for range 100 {
		leave, _ := room.SubscribeFunc(func(int) {})
		leaves = append(leaves, leave)
	}
	if &room.set.Load().slots[0] == &old.slots[0] {
		t.Fatal("the room never moved to a new array")
	}
	for _, leave := range leaves[1:] {
		leave()
	}
	var after []*subscriber[int]
	for s := range old.all() {
		after = append(after, s)
	}
	if len(mine) != 4 || len(after) != 4 {
		t.Fatalf("snapshot yields %d, then %d after the room grew and emptied; want 4 each time", len(mine), len(after))
	}
	for i := range mine {
		if mine[i] != after[i] {
			t.Fatal("the snapshot's members changed")
		}
	}
}

// TestJoinAndLeaveCostDoesNotGrowWithTheRoom joins and leaves a room of
// 100 and a room of 20,000, as many times as each holds (four times over,
// so that the new arrays each room needs now and then are paid for in
// the count): the bytes allocated per join and leave must be about the
// same. Copying the set on every change, as a room once did, allocates
// 160 KB per join and leave at 20,000.
func TestJoinAndLeaveCostDoesNotGrowWithTheRoom(t *testing.T) {
	perPair := func(n int) float64 {
		room := NewRooms[int]().Room("cost")
		var leaves []func()
		for range n {
			leave, _ := room.SubscribeFunc(func(int) {})
			leaves = append(leaves, leave)
		}
		pairs := 4 * n
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range pairs {
			leave, err := room.SubscribeFunc(func(int) {})
			if err != nil {
				t.Fatal(err)
			}
			leave()
		}
		runtime.ReadMemStats(&after)
		for _, leave := range leaves {
			leave()
		}
		return float64(after.TotalAlloc-before.TotalAlloc) / float64(pairs)
	}
	small, large := perPair(100), perPair(20000)
	if large > 1.5*small+64 {
		t.Fatalf("a join and leave allocates %.0f B in a room of 20,000, %.0f B in a room of 100", large, small)
	}
	t.Logf("bytes per join and leave: %.0f at 100 members, %.0f at 20,000", small, large)
}
