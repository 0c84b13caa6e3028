package wsroom

import (
	"context"
	"time"
)

// startLoop starts the lease loop unless it runs. ps.mu is held.
func (ps *presences) startLoop() {
	if ps.loop != nil {
		return
	}
	stop := make(chan struct{})
	ps.loop = stop
	go ps.run(stop)
}

// stopIfIdle stops the lease loop when there is nothing left to lease or
// drop. ps.mu is held.
func (ps *presences) stopIfIdle() {
	if ps.loop != nil && len(ps.rooms) == 0 && len(ps.drops) == 0 {
		close(ps.loop)
		ps.loop = nil
	}
}

// failed notes a call to the broker that failed: the process stops
// claiming others' entries until the broker has answered for a lease.
func (ps *presences) failed() {
	ps.errors.Add(1)
	ps.mu.Lock()
	ps.healthy = time.Time{}
	ps.mu.Unlock()
}

// run refreshes the registry's entries every quarter of the lease, until
// stop is closed.
func (ps *presences) run(stop <-chan struct{}) {
	t := time.NewTicker(max(ps.lease/4, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			ps.tick()
		}
	}
}

// tick drops what left during an outage, renews the lease of every
// present entry (and puts again those the broker lost), and, once the
// broker has answered for a whole lease, claims the expired entries of
// the rooms this process has members in.
//
// Waiting for a lease of answers is what keeps a live member from being
// announced gone after an outage: every process that was cut off has
// refreshed its entries within a quarter of a lease of the broker's
// return, well before anyone claims.
func (ps *presences) tick() {
	began := time.Now()
	ps.mu.Lock()
	drops := ps.drops
	ps.drops = map[string][]string{}
	rooms := make(map[string]*roomPresence, len(ps.rooms))
	for name, rp := range ps.rooms {
		rooms[name] = rp
	}
	ps.mu.Unlock()

	ok := true
	for room, ids := range drops {
		if err := ps.broker.DropPresence(room, ids); err != nil {
			ok = false
			ps.mu.Lock()
			ps.drops[room] = append(ps.drops[room], ids...)
			ps.mu.Unlock()
		}
	}
	for room, rp := range rooms {
		ok = ps.refresh(room, rp) && ok
	}
	if !ok {
		ps.failed()
	} else if ps.healthyFor(began) >= ps.lease {
		for room, rp := range rooms {
			ps.sweep(room, rp)
		}
	}
	ps.refreshes.Add(1)
	ps.mu.Lock()
	ps.stopIfIdle()
	ps.mu.Unlock()
}

// refresh renews the leases of room's present entries and puts again
// those the broker no longer holds; it reports whether the broker took
// it all.
func (ps *presences) refresh(room string, rp *roomPresence) bool {
	rp.io.Lock()
	defer rp.io.Unlock()
	ps.mu.Lock()
	ids := make([]string, 0, len(rp.entries))
	for id := range rp.entries {
		ids = append(ids, id)
	}
	ps.mu.Unlock()
	if len(ids) == 0 {
		return true
	}
	missing, err := ps.broker.RefreshPresence(room, ids, ps.lease)
	if err != nil {
		return false
	}
	if len(missing) == 0 {
		return true
	}
	ps.mu.Lock()
	recs := make([]PresenceRecord, 0, len(missing))
	for _, id := range missing {
		if x := rp.entries[id]; x != nil {
			recs = append(recs, *x)
		}
	}
	ps.mu.Unlock()
	return ps.broker.PutPresence(room, recs, ps.lease) == nil
}

// healthyFor returns how long every call to the broker has succeeded,
// starting the count, if it had stopped, at began: the start of the
// round whose calls all succeeded. Counting from the round's end instead
// would put a fresh process's first claim a round late, when its first
// round's calls took any time at all: 30 s after its start with the
// default lease, not 25.
func (ps *presences) healthyFor(began time.Time) time.Duration {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.healthy.IsZero() {
		ps.healthy = began
	}
	return time.Since(ps.healthy)
}

// sweep claims room's expired entries and publishes the leave message of
// each. Entries of this process's own that are still present (their
// refreshes did not reach the broker in time) are put back, not announced.
func (ps *presences) sweep(room string, rp *roomPresence) {
	ctx, cancel := context.WithTimeout(context.Background(), ps.lease/4)
	defer cancel()
	expired, err := ps.broker.ClaimExpired(ctx, room)
	if err != nil {
		ps.failed() // what was claimed before the error is announced all the same
	}
	lost := false
	for _, x := range expired {
		if x.Owner == ps.owner && ps.isPresent(room, x.ID) {
			lost = true
			continue
		}
		ps.claimed.Add(1)
		if len(x.Leave) > 0 {
			ps.announce(room, x.Leave)
		}
	}
	if lost {
		ps.refresh(room, rp) // puts them again, all at once: they are missing now
	}
}
