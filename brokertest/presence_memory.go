package brokertest

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/wsroom/wsroom"
)

// MemoryPresence is an in-process bus that also keeps rooms' presence,
// standing in for a server behind a wsroom.PresenceBroker; each broker it
// hands out plays one process. Leases run on the real clock; presence
// calls fail while the bus is down (SetDown), as publishes do.
type MemoryPresence struct {
	*Memory

	mu    sync.Mutex // makes each call one step: a claim is atomic
	rooms map[string]map[string]memEntry
}

type memEntry struct {
	rec     wsroom.PresenceRecord
	expires time.Time
}

// NewMemoryPresence returns an empty bus.
func NewMemoryPresence() *MemoryPresence {
	return &MemoryPresence{Memory: NewMemory(), rooms: map[string]map[string]memEntry{}}
}

// Broker returns a broker for one more process on the bus.
func (m *MemoryPresence) Broker() wsroom.PresenceBroker {
	return &memPresenceBroker{memBroker: memBroker{bus: m.Memory}, pres: m}
}

// Reset forgets every room's presence, as a restart of a server that keeps
// nothing on disk would.
func (m *MemoryPresence) Reset() {
	m.mu.Lock()
	m.rooms = map[string]map[string]memEntry{}
	m.mu.Unlock()
}

type memPresenceBroker struct {
	memBroker
	pres *MemoryPresence
}

// isDown reports whether the bus is down.
func (b *memPresenceBroker) isDown() bool {
	b.bus.mu.Lock()
	defer b.bus.mu.Unlock()
	return b.bus.down
}

func (b *memPresenceBroker) PutPresence(room string, entries []wsroom.PresenceRecord, lease time.Duration) error {
	if b.isDown() {
		return errDown{}
	}
	m := b.pres
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.rooms[room]
	if r == nil {
		r = map[string]memEntry{}
		m.rooms[room] = r
	}
	expires := time.Now().Add(lease)
	for _, x := range entries {
		r[x.ID] = memEntry{rec: clone(x), expires: expires}
	}
	return nil
}

func (b *memPresenceBroker) RefreshPresence(room string, ids []string, lease time.Duration) ([]string, error) {
	if b.isDown() {
		return nil, errDown{}
	}
	m := b.pres
	m.mu.Lock()
	defer m.mu.Unlock()
	var missing []string
	expires := time.Now().Add(lease)
	for _, id := range ids {
		e, ok := m.rooms[room][id]
		if !ok {
			missing = append(missing, id)
			continue
		}
		e.expires = expires
		m.rooms[room][id] = e
	}
	return missing, nil
}

func (b *memPresenceBroker) DropPresence(room string, ids []string) error {
	if b.isDown() {
		return errDown{}
	}
	m := b.pres
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range ids {
		delete(m.rooms[room], id)
	}
	if len(m.rooms[room]) == 0 {
		delete(m.rooms, room)
	}
	return nil
}

func (b *memPresenceBroker) ReadPresence(_ context.Context, room string) ([]wsroom.PresenceRecord, error) {
	return b.collect(room, false)
}

func (b *memPresenceBroker) ClaimExpired(_ context.Context, room string) ([]wsroom.PresenceRecord, error) {
	return b.collect(room, true)
}

// collect returns room's entries whose lease runs or, if expired, those
// whose lease has run out, which it removes in the same step: each
// expired entry goes to one caller.
func (b *memPresenceBroker) collect(room string, expired bool) ([]wsroom.PresenceRecord, error) {
	if b.isDown() {
		return nil, errDown{}
	}
	m := b.pres
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	var out []wsroom.PresenceRecord
	for id, e := range m.rooms[room] {
		if e.expires.After(now) == expired {
			continue
		}
		out = append(out, clone(e.rec))
		if expired {
			delete(m.rooms[room], id)
		}
	}
	if len(m.rooms[room]) == 0 {
		delete(m.rooms, room)
	}
	return out, nil
}

// clone copies a record's byte slices, which the caller may reuse.
func clone(x wsroom.PresenceRecord) wsroom.PresenceRecord {
	x.Meta, x.Leave = slices.Clone(x.Meta), slices.Clone(x.Leave)
	return x
}
