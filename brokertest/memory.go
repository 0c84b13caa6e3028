package brokertest

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/wsroom/wsroom"
)

// Memory is an in-process message bus standing in for a broker server;
// each Broker it hands out plays one process.
type Memory struct {
	mu   sync.Mutex
	subs map[string]map[*memSub]struct{}
	down bool
}

type memSub struct {
	owner   *memBroker
	deliver func([]byte)
	mu      sync.Mutex // one delivery at a time, in order
	gone    bool       // its Broker is closed: deliver no more; under mu
}

// NewMemory returns an empty bus.
func NewMemory() *Memory { return &Memory{subs: map[string]map[*memSub]struct{}{}} }

// Broker returns a broker for one more process on the bus.
func (m *Memory) Broker() wsroom.Broker { return &memBroker{bus: m} }

// SetDown makes publishing fail while down is set, as an unreachable
// server would.
func (m *Memory) SetDown(down bool) {
	m.mu.Lock()
	m.down = down
	m.mu.Unlock()
}

// Inject delivers payload to every subscriber of room, as a foreign
// publisher on the bus would.
func (m *Memory) Inject(room string, payload []byte) { m.publish(nil, room, payload) }

type memBroker struct {
	bus    *Memory
	closed atomic.Bool
}

// errClosed is what a closed Broker's calls return.
var errClosed = fmt.Errorf("brokertest: broker closed: %w", wsroom.ErrBroker)

// Close ends the subscriptions Subscribe made, waiting for a delivery in
// progress; later publishes fail with an error wrapping wsroom.ErrBroker
// and later subscriptions do nothing. It is idempotent.
func (b *memBroker) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	m := b.bus
	var mine []*memSub
	m.mu.Lock()
	for room, subs := range m.subs {
		for s := range subs {
			if s.owner == b {
				delete(subs, s)
				mine = append(mine, s)
			}
		}
		if len(subs) == 0 {
			delete(m.subs, room)
		}
	}
	m.mu.Unlock()
	for _, s := range mine {
		s.mu.Lock() // after the delivery in progress
		s.gone = true
		s.mu.Unlock()
	}
	return nil
}

// errDown is what publishing returns while the bus is down.
type errDown struct{}

func (errDown) Error() string { return "brokertest: bus is down" }

func (b *memBroker) Publish(room string, payload []byte) error {
	if b.closed.Load() {
		return errClosed
	}
	return b.bus.publish(b, room, payload)
}

func (m *Memory) publish(from *memBroker, room string, payload []byte) error {
	m.mu.Lock()
	if m.down {
		m.mu.Unlock()
		return errDown{}
	}
	var targets []*memSub
	for s := range m.subs[room] {
		if s.owner != from {
			targets = append(targets, s)
		}
	}
	m.mu.Unlock()
	msg := append([]byte(nil), payload...)
	for _, s := range targets {
		s.mu.Lock()
		if !s.gone {
			s.deliver(msg)
		}
		s.mu.Unlock()
	}
	return nil
}

// closed is the ready of every subscription: the bus subscribes at once.
var closed = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (b *memBroker) Subscribe(room string, deliver func([]byte)) (cancel func(), ready <-chan struct{}) {
	s := &memSub{owner: b, deliver: deliver}
	m := b.bus
	m.mu.Lock()
	if b.closed.Load() { // under m.mu: Close has taken, or will take, every subscription
		m.mu.Unlock()
		return func() {}, closed
	}
	if m.subs[room] == nil {
		m.subs[room] = map[*memSub]struct{}{}
	}
	m.subs[room][s] = struct{}{}
	m.mu.Unlock()
	return func() {
		m.mu.Lock()
		delete(m.subs[room], s)
		if len(m.subs[room]) == 0 {
			delete(m.subs, room)
		}
		m.mu.Unlock()
	}, closed
}

// Subscriptions returns how many subscriptions the bus holds for room.
func (m *Memory) Subscriptions(room string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.subs[room])
}
