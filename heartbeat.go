package wsroom

import "time"

// The heartbeat is one timer per endpoint, not one per connection. It
// ticks beatTurns times per pingInterval, and each tick gives their beat
// to the live connections whose turn it is (one in beatTurns, by ID), so
// every connection has one beat per interval and the pings of many
// connections are spread over it. It is armed while the endpoint has
// connections and stopped with the last one. A connection's first ping
// comes within pingInterval of its upgrade, and a silent one is closed
// within pingInterval past its idle timeout.

// beatTurns is how many ticks share out an interval's beats.
const beatTurns = 8

// heartbeat is an endpoint's heartbeat timer and its tick's batch. Guarded
// by the server's mu.
type heartbeat struct {
	timer *time.Timer // armed while the endpoint has connections; nil before the first
	armed bool
	turn  uint64  // the tick's turn: connections whose ID is turn modulo beatTurns
	batch []*conn // the tick's connections, kept from tick to tick
}

// touch records that the peer is alive.
func (c *conn) touch() { c.lastSeen.Store(nanotime()) }

// armHeartbeat arms the endpoint's heartbeat if it is not. s.mu must be
// held.
func (s *server) armHeartbeat() {
	h := &s.beats
	if s.cfg.pingInterval <= 0 || h.armed {
		return
	}
	h.armed = true
	if h.timer == nil {
		h.timer = time.AfterFunc(s.tickEvery(), s.tick)
	} else {
		h.timer.Reset(s.tickEvery())
	}
}

// disarmHeartbeat stops the heartbeat once the last connection is gone.
// s.mu must be held.
func (s *server) disarmHeartbeat() {
	if h := &s.beats; h.armed && len(s.conns) == 0 {
		h.timer.Stop()
		h.armed = false
	}
}

// tickEvery is the time between ticks.
func (s *server) tickEvery() time.Duration { return s.cfg.pingInterval / beatTurns }

// tick gives the live connections whose turn it is their beat, then arms
// the next tick (unless the last connection went meanwhile, disarming the
// heartbeat).
func (s *server) tick() {
	s.mu.Lock()
	batch := s.beats.batch[:0]
	turn := s.beats.turn % beatTurns
	s.beats.turn++
	for c := range s.conns {
		if c.id%beatTurns == turn {
			batch = append(batch, c)
		}
	}
	s.beats.batch = nil // the tick's own until it is done
	s.mu.Unlock()
	for _, c := range batch {
		c.beat()
	}
	clear(batch)
	s.mu.Lock()
	s.beats.batch = batch
	if s.beats.armed { // disarmHeartbeat keeps it false with no connection
		s.beats.timer.Reset(s.tickEvery())
	}
	s.mu.Unlock()
}

// beat is a connection's turn in a tick: the idle check, then a ping.
func (c *conn) beat() {
	// A throttled reader reads none of the peer's frames, pongs included:
	// the peer is not silent, it is not being heard.
	if !c.throttled.Load() && time.Duration(nanotime()-c.lastSeen.Load()) > c.cfg.idleTimeout {
		c.closeIdle()
		return
	}
	// A ping dropped on a full queue (OverflowDrop) is not fatal: the next
	// beat tries again, and the idle check still runs.
	_ = c.enqueue(pingFrame)
}
