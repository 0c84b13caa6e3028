package redisbroker

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
)

// breaker makes publishes fail at once while Redis is unreachable. The
// publish that fails opens it; from then on every publish fails with
// ErrUnavailable without trying Redis, so no publisher waits during an
// outage (a handler that waited would read its client's next messages
// only after the outage, and publish them into rooms whose other
// instances have not subscribed again yet). A probe in the background
// pings Redis with a backoff and closes the breaker once Redis answers; so
// does the subscription connection receiving again.
type breaker struct {
	open    atomic.Bool // fast path: false means publishes go to Redis
	mu      sync.Mutex
	lastErr error
}

// allow returns nil if a publish may try Redis, or the error to fail it
// with.
func (k *breaker) allow() error {
	if !k.open.Load() {
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.lastErr == nil {
		return nil // reset meanwhile
	}
	return fmt.Errorf("%w (last error: %v)", ErrUnavailable, k.lastErr)
}

// done records the outcome of a publish that tried Redis (whether Redis
// was unreachable, and the error) and reports whether it opened the
// breaker: the caller then starts the probe.
func (k *breaker) done(unreachable bool, err error) (opened bool) {
	if !unreachable {
		if k.open.Load() {
			k.reset()
		}
		return false
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	opened = k.lastErr == nil
	k.lastErr = err
	k.open.Store(true)
	return opened
}

// reset closes the breaker.
func (k *breaker) reset() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.lastErr = nil
	k.open.Store(false)
}

// probe pings Redis, with a backoff from minBackoff to maxBackoff between
// attempts, until it answers (and closes the breaker), the breaker is
// closed otherwise, or the Broker is. It runs in b.wg.
func (b *Broker) probe() {
	defer b.wg.Done()
	backoff := minBackoff
	for b.breaker.open.Load() {
		if !b.sleep(backoff) {
			return
		}
		ctx, cancel := context.WithTimeout(b.ctx, b.publishTimeout)
		err := b.client.Ping(ctx).Err()
		cancel()
		if err == nil {
			b.breaker.reset()
			return
		}
		backoff = min(2*backoff, maxBackoff)
	}
}
