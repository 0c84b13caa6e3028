package brokertest

import (
	"context"
	"fmt"
	"sync"

	"github.com/wsroom/wsroom"
)

// MemoryHistory is an in-process bus that also keeps rooms' histories,
// standing in for a server behind a wsroom.HistoryBroker; each broker it
// hands out plays one process. It keeps every room's last Size messages.
type MemoryHistory struct {
	*Memory
	Size int

	mu      sync.Mutex // guards the fields below; not held while delivering
	rooms   map[string]*memRoom
	rsubs   map[string]map[*memRecordedSub]struct{}
	epoch   int
	tickets uint64 // records numbered so far, each delivered in its turn

	// Records are delivered one at a time, in the order they were
	// numbered, without holding mu: a delivery may wait for the room's
	// history lock, which a joiner holds while it asks History.
	turnMu  sync.Mutex
	turn    *sync.Cond
	serving uint64 // the ticket whose delivery may go now
}

type memRoom struct {
	epoch string
	last  uint64
	msgs  []wsroom.Recorded
}

type memRecordedSub struct {
	owner   *memHistoryBroker
	deliver func(wsroom.Position, []byte)
}

// NewMemoryHistory returns an empty bus keeping size messages per room.
func NewMemoryHistory(size int) *MemoryHistory {
	m := &MemoryHistory{Memory: NewMemory(), Size: size,
		rooms: map[string]*memRoom{}, rsubs: map[string]map[*memRecordedSub]struct{}{}}
	m.turn = sync.NewCond(&m.turnMu)
	return m
}

// Broker returns a broker for one more process on the bus.
func (m *MemoryHistory) Broker() wsroom.HistoryBroker {
	return &memHistoryBroker{memBroker: memBroker{bus: m.Memory}, hist: m}
}

// Reset forgets every room's history, as a storage reset would: rooms
// start over in new epochs.
func (m *MemoryHistory) Reset() {
	m.mu.Lock()
	m.rooms = map[string]*memRoom{}
	m.mu.Unlock()
}

type memHistoryBroker struct {
	memBroker
	hist *MemoryHistory
}

func (b *memHistoryBroker) Record(room string, payload []byte) (wsroom.Position, error) {
	if b.closed.Load() {
		return wsroom.Position{}, errClosed
	}
	m := b.hist
	m.Memory.mu.Lock()
	down := m.Memory.down
	m.Memory.mu.Unlock()
	if down {
		return wsroom.Position{}, errDown{}
	}
	m.mu.Lock()
	r := m.rooms[room]
	if r == nil {
		m.epoch++
		r = &memRoom{epoch: fmt.Sprintf("mem-%d", m.epoch)}
		m.rooms[room] = r
	}
	r.last++
	pos := wsroom.Position{Offset: r.last, Epoch: r.epoch}
	msg := append([]byte(nil), payload...)
	r.msgs = append(r.msgs, wsroom.Recorded{Position: pos, Payload: msg})
	if len(r.msgs) > m.Size {
		r.msgs = r.msgs[len(r.msgs)-m.Size:]
	}
	subs := make([]*memRecordedSub, 0, len(m.rsubs[room]))
	for s := range m.rsubs[room] {
		subs = append(subs, s)
	}
	ticket := m.tickets
	m.tickets++
	m.mu.Unlock()

	m.turnMu.Lock()
	for m.serving != ticket {
		m.turn.Wait()
	}
	m.turnMu.Unlock()
	for _, s := range subs { // every subscriber gets the same order
		s.deliver(pos, msg)
	}
	m.turnMu.Lock()
	m.serving++
	m.turn.Broadcast()
	m.turnMu.Unlock()
	return pos, nil
}

func (b *memHistoryBroker) SubscribeRecorded(room string, deliver func(wsroom.Position, []byte)) (cancel func(), ready <-chan struct{}) {
	m := b.hist
	s := &memRecordedSub{owner: b, deliver: deliver}
	if b.closed.Load() {
		return func() {}, closed
	}
	m.mu.Lock()
	if m.rsubs[room] == nil {
		m.rsubs[room] = map[*memRecordedSub]struct{}{}
	}
	m.rsubs[room][s] = struct{}{}
	m.mu.Unlock()
	return func() {
		m.mu.Lock()
		delete(m.rsubs[room], s)
		if len(m.rsubs[room]) == 0 {
			delete(m.rsubs, room)
		}
		m.mu.Unlock()
	}, closed
}

func (b *memHistoryBroker) History(_ context.Context, room string, since wsroom.Position, limit int) ([]wsroom.Recorded, string, bool, error) {
	if b.closed.Load() {
		return nil, "", false, errClosed
	}
	m := b.hist
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.rooms[room]
	if r == nil {
		m.epoch++
		r = &memRoom{epoch: fmt.Sprintf("mem-%d", m.epoch)}
		m.rooms[room] = r
	}
	if since.Epoch != r.epoch || since.Offset > r.last {
		return nil, r.epoch, false, nil
	}
	first := r.last + 1 - uint64(len(r.msgs)) // offset of msgs[0]
	if since.Offset+1 < first {
		return nil, r.epoch, false, nil
	}
	after := r.msgs[since.Offset+1-first:]
	complete := len(after) <= limit
	after = after[:min(len(after), limit)]
	return append([]wsroom.Recorded(nil), after...), r.epoch, complete, nil
}
