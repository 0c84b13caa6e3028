package wsroom

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"slices"
	"sort"
)

// A JoinOption adds to what Join does: As makes the member present, and
// LeaveWith gives the message announcing it gone.
type JoinOption func(*joinConfig)

type joinConfig struct {
	key      string
	keyed    bool
	meta     any
	leave    any
	hasLeave bool
	then     any // ThenSend's func() M; nil: none
}

// As makes the joining member present in the room under key (a user
// name, an account id), with meta, encoded as JSON, as its metadata (nil
// for none): Room.Presence lists it from the moment its announcement is
// sent until it leaves. The connections of one key, in every process, are
// one entry with a count of connections (two tabs of one user are one
// user). key must be non-empty valid UTF-8; key, meta and the leave
// message together are bounded by WithPresenceLimits.
func As(key string, meta any) JoinOption {
	return func(jc *joinConfig) { jc.key, jc.meta, jc.keyed = key, meta, true }
}

// LeaveWith gives the message announcing the member gone: the room
// publishes m when the member leaves (its handler returns, or it calls
// the func Join returned), after the member is out of the room and out of
// its presence. With As and a PresenceBroker, m is stored with the
// member's entry too, so that if its process dies, one surviving process
// publishes m once the entry's lease has run out: each connection is
// announced gone exactly once, by whichever process outlives it. m must be
// of the room's message type, or Join fails.
func LeaveWith[M any](m M) JoinOption {
	return func(jc *joinConfig) { jc.leave, jc.hasLeave = m, true }
}

// PresenceEntry is one key present in a room: the connections of that key
// in every process, counted.
type PresenceEntry struct {
	Key         string
	Connections int
	// Meta is the metadata (As) of the key's connection that joined first,
	// by the clock of its process; nil when it has none.
	Meta json.RawMessage
}

// Presence is a snapshot of who is in a room, one entry per key, sorted by
// key in byte order.
//
// A key is one entry with a count, not a list of each connection's
// metadata as in Phoenix Presence: a user with many tabs stays one small
// entry, the size of a snapshot grows with users, not tabs, and what one
// tab is to another (which device, which page) stays with each
// connection, where the application already has it.
type Presence struct {
	entries []PresenceEntry
	conns   int
}

// All yields the entries sorted by key.
func (p Presence) All() iter.Seq[PresenceEntry] {
	return func(yield func(PresenceEntry) bool) {
		for _, e := range p.entries {
			if !yield(e) {
				return
			}
		}
	}
}

// Len returns the number of keys present.
func (p Presence) Len() int { return len(p.entries) }

// Connections returns the number of connections present, of every key.
func (p Presence) Connections() int { return p.conns }

// Get returns key's entry, if key is present.
func (p Presence) Get(key string) (PresenceEntry, bool) {
	i, ok := slices.BinarySearchFunc(p.entries, key, func(e PresenceEntry, k string) int { return cmp.Compare(e.Key, k) })
	if !ok {
		return PresenceEntry{}, false
	}
	return p.entries[i], true
}

// Presence returns who is in the room: the members that joined with As,
// in this process and, with a PresenceBroker, in every other.
//
// In this process it is exact: a member is present from the moment its
// announcement is sent (within Join, so always once Join has returned)
// until it leaves (before its leave message is published). Members of
// other processes are those whose entries the broker holds: an entry is
// there once its Join has returned, gone once its leave has, and, if its
// process died, gone when its lease runs out (DefaultPresenceLease).
//
// When the broker cannot be read, Presence returns this process's members
// and an error wrapping ErrBroker.
func (r *Room[M]) Presence(ctx context.Context) (Presence, error) {
	ps := r.rooms.presence
	recs := ps.local(r.name)
	if ps.broker == nil {
		return summarise(recs), nil
	}
	remote, err := ps.broker.ReadPresence(ctx, r.name)
	if err != nil {
		return summarise(recs), fmt.Errorf("%w: presence of room %q: %w", ErrBroker, r.name, err)
	}
	for _, x := range remote {
		switch {
		case x.Owner == ps.owner:
			// This process's own entries are the exact ones it holds.
		case !validRemoteRecord(x):
			r.rooms.remoteInvalid.Add(1)
		default:
			recs = append(recs, x)
		}
	}
	return summarise(recs), nil
}

// summarise groups records by key: a count and the first joiner's meta.
func summarise(recs []PresenceRecord) Presence {
	sort.Slice(recs, func(i, j int) bool {
		a, b := recs[i], recs[j]
		if a.Key != b.Key {
			return a.Key < b.Key
		}
		if !a.Joined.Equal(b.Joined) {
			return a.Joined.Before(b.Joined)
		}
		return a.ID < b.ID
	})
	p := Presence{conns: len(recs)}
	for _, x := range recs {
		if n := len(p.entries); n > 0 && p.entries[n-1].Key == x.Key {
			p.entries[n-1].Connections++
			continue
		}
		p.entries = append(p.entries, PresenceEntry{Key: x.Key, Connections: 1, Meta: x.Meta})
	}
	return p
}

// announceLeave publishes the leave message of an expired entry another
// process put: JSON from outside the process, dropped and counted when it
// is not an M.
func (rs *Rooms[M]) announceLeave(room string, leave []byte) {
	var m M
	if json.Unmarshal(leave, &m) != nil {
		rs.remoteInvalid.Add(1)
		return
	}
	_ = rs.Room(room).Publish(m) // a broker error is counted, as for any publish
}
