package wsroom

import (
	"math"
	"time"
)

// rateBucket is a connection's token bucket for inbound messages. It
// belongs to the reader goroutine.
type rateBucket struct {
	tokens   float64
	refilled int64       // nanotime of the last refill; 0: never, the bucket starts full
	timer    *time.Timer // what a throttled reader waits on, made at its first wait
}

// maxRateWait bounds one wait of a throttled reader, so that a tiny rate
// cannot overflow a Duration; a reader that wakes early waits again.
const maxRateWait = time.Hour

// take refills the bucket for the time since the last refill and takes a
// token, or returns how long until there is one. The refill counts the
// time that passed, not the time waited for, so a timer that fires late
// does not slow the rate down.
func (b *rateBucket) take(now int64, rate float64, burst int) time.Duration {
	if b.refilled == 0 {
		b.tokens = float64(burst)
	} else {
		b.tokens = min(float64(burst), b.tokens+float64(now-b.refilled)*rate/1e9)
	}
	b.refilled = now
	if b.tokens < 1 {
		return time.Duration(min(math.Ceil((1-b.tokens)*1e9/rate), float64(maxRateWait)))
	}
	b.tokens--
	return 0
}

// received records an inbound message and takes a token for it from the
// rate limit's bucket. If the bucket is empty it takes none and returns
// how long until it holds one.
func (c *conn) received() time.Duration {
	now := nanotime()
	c.lastSeen.Store(now)
	if c.cfg.rate == 0 {
		return 0
	}
	return c.rate.take(now, c.cfg.rate, c.cfg.burst)
}

// overLimit applies the rate policy to a message that found the bucket
// empty. It reports whether the message is to be handled.
func (c *conn) overLimit(wait time.Duration) bool {
	if c.cfg.ratePolicy == RateClose {
		c.closeForPolicy("rate limit exceeded", c.stats.countRateLimited)
		return false
	}
	return c.throttle(wait)
}

// throttle holds the reader for wait, and longer if need be, until the
// bucket has a token for the message it read, and takes it. It reports
// false if the connection started closing meanwhile: the message is then
// not to be handled. The idle timeout does not run while it waits.
func (c *conn) throttle(wait time.Duration) bool {
	c.stats.throttled.Add(1)
	c.throttled.Store(true)
	defer c.throttled.Store(false)
	for wait > 0 {
		if c.rate.timer == nil {
			c.rate.timer = time.NewTimer(wait)
		} else {
			c.rate.timer.Reset(wait) // stopped or fired: no stale tick (Go 1.23 timers)
		}
		select {
		case <-c.rate.timer.C:
		case <-c.ctx.Done():
			c.rate.timer.Stop()
			return false
		}
		if c.closing.Load() {
			return false
		}
		wait = c.rate.take(nanotime(), c.cfg.rate, c.cfg.burst)
	}
	c.touch() // before the flag clears: the idle timeout counts from here
	return true
}
