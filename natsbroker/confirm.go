package natsbroker

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// closedChan is the ready of a subscription there is nothing to wait for.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// confirmer closes the ready channels of new subscriptions once the server
// has them. A server handles one connection's protocol in order, so the
// PONG to a PING written after a SUB means the SUB is in effect. One PING
// confirms every subscription made before it was written: while a round
// trip is out, new subscriptions wait for the next one, so a burst of joins
// costs a round trip per batch, not one each, and at most one goroutine
// runs, only while there is something to confirm.
//
// On reconnecting, nats.go sends every subscription again, and only then
// lets its status be seen as CONNECTED (it holds the connection's lock
// from the new socket's handshake until the SUBs and the reconnect buffer
// are written). So a subscription made while the status was RECONNECTING
// and found CONNECTED afterwards is confirmed by a PING as well.
type confirmer struct {
	nc          *nats.Conn
	timeout     time.Duration
	unconfirmed atomic.Int64 // readies closed without the server's answer

	mu       sync.Mutex
	waiting  []waiter // oldest first
	flushing bool     // run is under way
}

// waiter is a subscription waiting for its round trip.
type waiter struct {
	ready    chan struct{}
	deadline time.Time // when to close ready, answer or not
}

// add returns the ready of a subscription nats.go has just taken. It does
// not wait for the network.
func (c *confirmer) add() <-chan struct{} {
	// Read after nc.Subscribe: a connection seen connected now either was
	// when the SUB was written, or has reconnected since and sent it again.
	if c.nc.Status() != nats.CONNECTED {
		c.unconfirmed.Add(1) // nats.go subscribes when it is back
		return closedChan
	}
	ready := make(chan struct{})
	c.mu.Lock()
	c.waiting = append(c.waiting, waiter{ready: ready, deadline: time.Now().Add(c.timeout)})
	start := !c.flushing
	c.flushing = true
	c.mu.Unlock()
	if start {
		go c.run()
	}
	return ready
}

// run confirms the waiting subscriptions, one round trip per batch, until
// none is left. A batch's round trip is bounded by its oldest deadline, so
// every ready is closed within the timeout of its Subscribe.
func (c *confirmer) run() {
	for {
		c.mu.Lock()
		batch := c.waiting
		c.waiting = nil
		if len(batch) == 0 {
			c.flushing = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		if !c.roundTrip(time.Until(batch[0].deadline)) {
			c.unconfirmed.Add(int64(len(batch)))
		}
		for _, w := range batch {
			close(w.ready)
		}
	}
}

// roundTrip reports whether the server answered a PING within timeout.
// FlushTimeout returns at once when the connection is lost or closed
// meanwhile (nats.go then releases every pending PING).
func (c *confirmer) roundTrip(timeout time.Duration) bool {
	if timeout <= 0 || c.nc.Status() != nats.CONNECTED {
		return false
	}
	return c.nc.FlushTimeout(timeout) == nil
}
