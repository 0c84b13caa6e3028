package wsroom

import (
	"errors"
	"time"
)

// touch records that the peer is alive.
func (c *conn) touch() { c.lastSeen.Store(nanotime()) }

// startHeartbeat arms the timer that pings the peer and closes it when it
// has been silent past the idle timeout.
func (c *conn) startHeartbeat() {
	if c.cfg.pingInterval <= 0 {
		return
	}
	c.mu.Lock()
	if c.state == stateOpen {
		c.heartbeat = time.AfterFunc(c.cfg.pingInterval, c.beat)
	}
	c.mu.Unlock()
}

// beat is one tick of the heartbeat: the idle check, then a ping.
func (c *conn) beat() {
	// A throttled reader reads none of the peer's frames, pongs included:
	// the peer is not silent, it is not being heard.
	if !c.throttled.Load() && time.Duration(nanotime()-c.lastSeen.Load()) > c.cfg.idleTimeout {
		c.closeIdle()
		return
	}
	// A ping dropped on a full queue (OverflowDrop) is not fatal: the next
	// beat tries again, and the idle check still runs.
	if errors.Is(c.enqueue(pingFrame), ErrClosed) {
		return
	}
	c.mu.Lock()
	if c.state == stateOpen {
		c.heartbeat.Reset(c.cfg.pingInterval)
	}
	c.mu.Unlock()
}
