package natsbroker

import (
	"context"
	"sync"
)

// heads keeps, for each room this Broker records into or is subscribed
// to, the room's last record as last seen: Record expects it to be the
// subject's last message when it publishes, so a process that records
// alone into a room, or hears every record, publishes at once; a record
// from elsewhere that it has not heard yet costs it a conflict and a read.
// A room's entry lives while a Record or a recorded subscription uses it,
// and idle after that while there are fewer than maxHeads entries: a
// stale one costs a conflict, never a wrong offset.
type heads struct {
	mu sync.Mutex
	m  map[string]*roomHead
}

// maxHeads bounds the entries heads keeps idle.
const maxHeads = 4096

// roomHead is one room's entry.
type roomHead struct {
	refs int           // under heads.mu
	turn chan struct{} // held by the Record in progress

	mu    sync.Mutex
	last  record
	known bool
}

// acquire returns room's entry, made if new; release gives it back.
func (hs *heads) acquire(room string) *roomHead {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if hs.m == nil {
		hs.m = map[string]*roomHead{}
	}
	rh := hs.m[room]
	if rh == nil {
		if len(hs.m) >= maxHeads {
			hs.dropIdle()
		}
		rh = &roomHead{turn: make(chan struct{}, 1)}
		hs.m[room] = rh
	}
	rh.refs++
	return rh
}

func (hs *heads) release(rh *roomHead) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	rh.refs--
}

// dropIdle removes an entry nobody uses, if there is one (whichever map
// iteration finds first: no order is needed). hs.mu is held.
func (hs *heads) dropIdle() {
	for room, rh := range hs.m {
		if rh.refs == 0 {
			delete(hs.m, room)
			return
		}
	}
}

// lock takes the room's turn to record, waiting at most until ctx is done.
func (rh *roomHead) lock(ctx context.Context) error {
	select {
	case rh.turn <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (rh *roomHead) unlock() { <-rh.turn }

// get returns the room's last record as last seen, if it is known.
func (rh *roomHead) get() (record, bool) {
	rh.mu.Lock()
	defer rh.mu.Unlock()
	return rh.last, rh.known
}

// seen notes r, a record of the room or what a read of its last record
// found, unless a later one is known.
func (rh *roomHead) seen(r record) {
	rh.mu.Lock()
	defer rh.mu.Unlock()
	if !rh.known || r.seq >= rh.last.seq {
		rh.last, rh.known = r, true
	}
}

// forget drops what is known: the next record reads the room's last.
func (rh *roomHead) forget() {
	rh.mu.Lock()
	rh.known = false
	rh.mu.Unlock()
}
