package redisbroker

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// breaker makes publishes fail at once while Redis is unreachable: after a
// publish fails, publishes fail without trying Redis for a backoff that
// grows from minBackoff to maxBackoff with each failure in a row; then one
// publish tries, the others still failing at once while it does. A
// publish that succeeds, or the subscription connection receiving again,
// closes the breaker.
type breaker struct {
	open     atomic.Bool // fast path: false means publishes go to Redis
	mu       sync.Mutex
	failures int
	until    time.Time
	lastErr  error
}

// allow returns nil if a publish may try Redis (for at most timeout), or
// the error to fail it with.
func (k *breaker) allow(timeout time.Duration) error {
	if !k.open.Load() {
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.failures == 0 {
		return nil
	}
	now := time.Now()
	if now.Before(k.until) {
		return fmt.Errorf("%w (last error: %v)", ErrUnavailable, k.lastErr)
	}
	k.until = now.Add(timeout) // this publish is the trial
	return nil
}

// done records the outcome of a publish that tried Redis.
func (k *breaker) done(err error) {
	if err == nil {
		if k.open.Load() {
			k.reset()
		}
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.failures++
	k.lastErr = err
	k.until = time.Now().Add(min(minBackoff<<min(k.failures-1, 10), maxBackoff))
	k.open.Store(true)
}

// reset closes the breaker.
func (k *breaker) reset() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.failures, k.lastErr = 0, nil
	k.open.Store(false)
}
