package pgbroker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/wsroom/wsroom"
)

// Bounds of the breaker (see "Failing fast" in the package doc).
const (
	// tripAfter is how many calls in a row must go unanswered, with no
	// call answered meanwhile, to open the breaker.
	tripAfter = 3
	// probeInterval is how long an open breaker fails every call at once
	// before it lets one through to try PostgreSQL again.
	probeInterval = 250 * time.Millisecond
)

// ErrUnavailable is returned by Publish, Record, History and the presence
// calls, without trying PostgreSQL, while the Broker knows PostgreSQL is
// unreachable: see "Failing fast" in the package doc. It wraps
// wsroom.ErrBroker, as ErrClosed does.
var ErrUnavailable error = unavailableError{}

// unavailableError is ErrUnavailable: it names the adapter and unwraps to
// wsroom.ErrBroker without repeating its text.
type unavailableError struct{}

func (unavailableError) Error() string { return "pgbroker: PostgreSQL unavailable" }
func (unavailableError) Unwrap() error { return wsroom.ErrBroker }

// errListenerDown is why calls fail while the listener cannot reach the
// server.
var errListenerDown = fmt.Errorf("%w: the listener cannot connect", ErrUnavailable)

// breaker makes the Broker's calls to PostgreSQL fail at once while it
// knows the server is unreachable, so that no handler waits out the
// publish timeout on every message through an outage. Two things open it.
// The listener, when an attempt to connect goes unanswered: it tries
// again on its own, and an attempt the server answers closes the breaker.
// And calls that go unanswered (a timeout, a refused or broken
// connection) tripAfter times in a row while no call at all was answered,
// which a hanging server does and a busy one does not: then, every
// probeInterval, one call goes through (half-open), and its answer closes
// the breaker.
type breaker struct {
	born time.Time // the origin of the monotonic times below
	// unreachable is set while the listener's latest attempt to connect
	// went unanswered, until one is answered. A connection that breaks
	// does not set it (pg_terminate_backend ends one on a server that
	// is up): the attempt that follows at once tells.
	unreachable atomic.Bool
	// answered is when the latest answered call ended (since born): a
	// failure of a call that started before it says nothing of the
	// server.
	answered atomic.Int64
	tripped  atomic.Bool // open, for unanswered calls
	failing  atomic.Bool // failures > 0 or tripped: an answer must reset them
	rejected atomic.Int64

	mu       sync.Mutex
	failures int           // unanswered calls in a row
	retry    time.Duration // when an open breaker lets a probe through (since born)
	probing  bool          // a probe is under way
	lastErr  error         // of the latest unanswered call
}

// A call is one statement allow let through.
type call struct {
	ctx   context.Context // the caller's: its end is the caller's doing, not the server's
	start time.Duration   // since born
	probe bool            // the one call an open breaker let through
}

func newBreaker() *breaker { return &breaker{born: time.Now()} }

func (k *breaker) now() time.Duration { return time.Since(k.born) }

// allow returns the call to run, under ctx (the caller's), or the error
// to fail it with at once.
func (k *breaker) allow(ctx context.Context) (call, error) {
	c := call{ctx: ctx, start: k.now()}
	if k.unreachable.Load() {
		k.rejected.Add(1)
		return c, errListenerDown
	}
	if !k.tripped.Load() {
		return c, nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	switch {
	case !k.tripped.Load(): // closed meanwhile
		return c, nil
	case !k.probing && c.start >= k.retry:
		k.probing, c.probe = true, true
		return c, nil
	}
	k.rejected.Add(1)
	return c, fmt.Errorf("%w: %d calls in a row went unanswered (the latest: %v)", ErrUnavailable, tripAfter, k.lastErr)
}

// done records how a call that allow let through ended.
func (k *breaker) done(c call, err error) {
	switch {
	case err == nil || !unanswered(err):
		now := int64(k.now())
		for old := k.answered.Load(); old < now && !k.answered.CompareAndSwap(old, now); old = k.answered.Load() {
		}
		if c.probe || k.failing.Load() {
			k.reset()
		}
	case c.ctx.Err() != nil: // the caller gave up, or Close: nothing learnt
		if c.probe {
			k.mu.Lock()
			k.probing, k.retry = false, k.now()
			k.mu.Unlock()
		}
	default:
		k.fail(c, err)
	}
}

// fail records a call that went unanswered.
func (k *breaker) fail(c call, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	if c.probe {
		k.probing, k.retry, k.lastErr = false, now+probeInterval, err
		return
	}
	if k.answered.Load() > int64(c.start) {
		return // another call was answered while this one waited: not the server
	}
	k.failures++
	k.lastErr = err
	k.failing.Store(true)
	if k.failures >= tripAfter && !k.tripped.Load() {
		k.retry = now + probeInterval
		k.tripped.Store(true)
	}
}

// listenerFound records how the listener's attempt to connect ended: an
// attempt the server answered closes the breaker, whatever opened it.
func (k *breaker) listenerFound(err error) {
	down := err != nil && unanswered(err)
	k.unreachable.Store(down)
	if !down {
		k.reset()
	}
}

// reset closes the breaker: PostgreSQL answered.
func (k *breaker) reset() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.failures, k.probing, k.lastErr = 0, false, nil
	k.tripped.Store(false)
	k.failing.Store(false)
}

// unanswered reports whether err says PostgreSQL did not answer: no
// connection, one that broke or timed out, or the server going away
// (SQLSTATE classes 08 and 57P). Any other error of the server is an
// answer.
func unanswered(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return strings.HasPrefix(pgErr.Code, "08") || strings.HasPrefix(pgErr.Code, "57P")
	}
	return true
}

// guard runs statement, which uses ctx (the caller's, bounded by the
// Broker as the call requires), unless the breaker fails it at once, and
// records its outcome.
func (b *Broker) guard(ctx context.Context, statement func() error) error {
	c, err := b.breaker.allow(ctx)
	if err != nil {
		return err
	}
	err = statement()
	b.breaker.done(c, err)
	return err
}
