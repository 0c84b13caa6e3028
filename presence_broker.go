package wsroom

import (
	"context"
	"encoding/json"
	"time"
)

// A PresenceBroker is a Broker that keeps rooms' presence, so that a room
// answers "who is here" for every process (Room.Presence). Rooms of a
// registry whose broker is a PresenceBroker register there the members
// that join with As.
//
// Entries are leased: each process puts its entries with a lease and
// refreshes them, every quarter of the lease, for as long as they are here,
// so that a process that dies without a goodbye loses its entries when
// their lease runs out. The survivors then claim the expired entries and
// publish each one's leave message (LeaveWith): ClaimExpired hands each
// expired entry to exactly one caller, whatever the number of processes
// calling at once, so each dead connection is announced gone once in all.
//
// Leases run on the broker's clock (the server's, for a networked one),
// so the processes' clocks need not agree. Like Publish, PutPresence and
// DropPresence must be bounded in time and fail at once while the broker
// knows its server is unreachable; ReadPresence and ClaimExpired may wait
// for the network for as long as ctx allows. A broker must keep rooms
// apart whatever their names contain, and must not keep the slices it is
// given after it returns.
//
// A broker type whose values keep presence or not, as they were made
// (natsbroker's, by WithPresence), has a method KeepsPresence() bool
// beside these: a registry uses a broker whose KeepsPresence returns
// false as a plain Broker, and its presence is then its own process's.
type PresenceBroker interface {
	Broker
	// PutPresence stores entries in room, each replacing the one of the
	// same ID, and leases them until lease from now.
	PutPresence(room string, entries []PresenceRecord, lease time.Duration) error
	// RefreshPresence leases room's entries of these IDs until lease from
	// now, and returns the IDs it does not hold (the broker lost them, or
	// another process claimed them as expired): the caller puts those
	// again. It is what keeps entries alive, sending IDs, not whole
	// entries.
	RefreshPresence(room string, ids []string, lease time.Duration) (missing []string, err error)
	// DropPresence removes room's entries of these IDs; an ID that is not
	// there is no error.
	DropPresence(room string, ids []string) error
	// ReadPresence returns room's entries whose lease has not run out,
	// those of every process, in any order.
	ReadPresence(ctx context.Context, room string) ([]PresenceRecord, error)
	// ClaimExpired removes room's entries whose lease has run out and
	// returns them. An entry is returned to one caller only: of two
	// processes claiming at once, each gets a part, together all, none
	// twice.
	ClaimExpired(ctx context.Context, room string) ([]PresenceRecord, error)
}

// PresenceRecord is one connection's presence entry as a PresenceBroker
// keeps it. Its JSON form (the field tags) is what the brokers of this
// repository store.
type PresenceRecord struct {
	// ID names the connection, unique across processes: the owner's id, a
	// dash, and a count.
	ID string `json:"id"`
	// Owner is the id of the registry (the process) that put the entry:
	// 16 hexadecimal digits drawn at random by NewRooms.
	Owner string `json:"owner"`
	// Key is the member's presence key (As).
	Key string `json:"key"`
	// Meta is the member's metadata as JSON (As); nil when it has none.
	Meta json.RawMessage `json:"meta,omitempty"`
	// Leave is the JSON of the member's leave message (LeaveWith), which
	// the process that claims the expired entry publishes; nil when it has
	// none.
	Leave json.RawMessage `json:"leave,omitempty"`
	// Joined is when the member joined, by its owner's clock: of a key's
	// connections, the earliest gives the key's Meta.
	Joined time.Time `json:"joined"`
}

// DefaultPresenceLease is how long a PresenceBroker keeps an entry its
// process no longer refreshes (WithPresenceLease). Entries are refreshed
// every quarter of it, and the survivors look for expired entries as
// often, so a dead process's members are announced gone between 15 and 25
// seconds after its death, and a process that cannot reach the broker for
// up to 15 seconds loses nothing.
const DefaultPresenceLease = 20 * time.Second
