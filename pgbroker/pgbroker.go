package pgbroker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/wsroom/wsroom"
)

// maxReadyWait bounds how long a subscription waits for its LISTEN, well
// within wsroom.BrokerReadyTimeout.
const maxReadyWait = time.Second

// ErrClosed is returned by Publish, Record and History after Close. It
// wraps wsroom.ErrBroker, as every adapter's ErrClosed does.
var ErrClosed error = closedError{}

// closedError is ErrClosed: it names the adapter and unwraps to
// wsroom.ErrBroker without repeating its text.
type closedError struct{}

func (closedError) Error() string { return "pgbroker: broker closed" }
func (closedError) Unwrap() error { return wsroom.ErrBroker }

var _ wsroom.HistoryBroker = (*Broker)(nil)

// Broker is a wsroom.HistoryBroker and wsroom.PresenceBroker on
// PostgreSQL: a log table, a presence table, LISTEN and NOTIFY. It is safe
// for concurrent use. Create it with New.
type Broker struct {
	pool   *pgxpool.Pool
	cfg    config
	prefix string
	origin string // this Broker's id in the log and the notifications
	utf8DB bool   // the database's encoding is UTF8
	sql    statements

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	start  sync.Once // the listener
	wg     sync.WaitGroup
	closed atomic.Bool
	// publishing is read-locked by each publish: Close takes it to wait
	// for those in progress.
	publishing sync.RWMutex

	mu   sync.Mutex
	subs map[string][]*subscription // stream → its local subscriptions; slices are never modified, only replaced
	// dirty holds the streams whose LISTEN may have to change.
	dirty map[string]struct{}
	// listening holds the streams LISTENed on the current connection,
	// whose position the listener knows: a subscription to one is in
	// effect at once.
	listening map[string]bool
	waiting   map[string]*waiter // ready of the subscriptions waiting for their stream's LISTEN
	// interrupt ends the listener's wait for a notification; nil while
	// it is not waiting.
	interrupt context.CancelFunc
	// down is set while the listener is known to be disconnected: from a
	// failed connection or attempt until it has connected again.
	down bool
	// breaker fails calls at once while PostgreSQL is known unreachable.
	breaker *breaker

	published, publishErrors, recorded, recordErrors, received, receivedRecorded, fromLog, caughtUp atomic.Int64
	echoes, duplicates, malformed, missed, gaps, connErrors                                         atomic.Int64
}

// A subscription is Subscribe's (deliver) or SubscribeRecorded's
// (deliverRecorded).
type subscription struct {
	deliver         func([]byte)
	deliverRecorded func(wsroom.Position, []byte)
	cancelled       atomic.Bool
}

// A waiter is the ready of the subscriptions of a stream that wait for
// its LISTEN; its timer releases them after maxReadyWait.
type waiter struct {
	ready chan struct{}
	timer *time.Timer
}

// closedReady is the ready of a subscription in effect at once, or that
// cannot be for now.
var closedReady = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// New returns a Broker that publishes through pool and listens on a
// connection of its own, made with pool's connection config. The pool
// stays the caller's: close it after the Broker. New creates the tables
// of the prefix if they do not exist (unless WithoutSchemaSetup), and
// fails if it cannot, if an option is not valid, or if PostgreSQL cannot
// be reached within ctx.
func New(ctx context.Context, pool *pgxpool.Pool, opts ...Option) (*Broker, error) {
	if pool == nil {
		return nil, errors.New("pgbroker: nil pool")
	}
	cfg := defaults()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.check(); err != nil {
		return nil, err
	}
	var id [originLen / 2]byte
	_, _ = rand.Read(id[:]) // never fails (crypto/rand)
	b := &Broker{
		pool:      pool,
		cfg:       cfg,
		prefix:    cfg.prefix,
		origin:    hex.EncodeToString(id[:]),
		sql:       newStatements(cfg.prefix),
		subs:      map[string][]*subscription{},
		dirty:     map[string]struct{}{},
		listening: map[string]bool{},
		waiting:   map[string]*waiter{},
		breaker:   newBreaker(),
	}
	var err error
	if cfg.setup {
		err = b.setupSchema(ctx)
	} else {
		err = b.checkSchema(ctx)
	}
	if err == nil {
		var enc string
		err = pool.QueryRow(ctx, "SHOW server_encoding").Scan(&enc)
		b.utf8DB = enc == "UTF8"
	}
	if err != nil {
		return nil, fmt.Errorf("pgbroker: %w", err)
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.wg.Add(1)
	go b.trimEvery(trimInterval(cfg.logAge))
	return b, nil
}

// Publish sends payload to the room's members in other processes: it
// appends payload to the room's log, with the room's next offset, and
// notifies the room's channel, in one transaction, and waits for
// PostgreSQL to commit it, for at most the publish timeout. Messages
// published by one goroutine arrive in order. While the Broker knows
// PostgreSQL is unreachable it fails at once with ErrUnavailable (see
// "Failing fast" in the package doc). An error names the room; wsroom's
// Room.Publish wraps it in wsroom.ErrBroker.
func (b *Broker) Publish(room string, payload []byte) error {
	b.publishing.RLock() // Close waits for publishes in progress
	defer b.publishing.RUnlock()
	if b.closed.Load() {
		b.publishErrors.Add(1)
		return ErrClosed
	}
	key := roomKey(room)
	var text any // NULL: the listener reads the message from the log
	if inline(payload, b.utf8DB) {
		text = string(payload)
	}
	err := b.guard(b.ctx, func() error {
		ctx, cancel := context.WithTimeout(b.ctx, b.cfg.publishTimeout)
		defer cancel()
		_, err := b.pool.Exec(ctx, b.sql.publish, key, b.origin, payload, b.channel(key), text)
		return err
	})
	if err != nil {
		b.publishErrors.Add(1)
		return fmt.Errorf("pgbroker: publish to room %q: %w", room, err)
	}
	b.published.Add(1)
	return nil
}

// Subscribe starts handing deliver the payloads other processes publish to
// room, until cancel is called. It returns at once: the room's channel is
// LISTENed in the background, and ready is closed once the LISTEN is in
// effect and the listener knows the room's latest offset (at once if it is
// already), or once the Broker knows PostgreSQL is unreachable, or after a
// second. Messages published before ready is closed may not be delivered.
// Records (Record) are not publishes: deliver never sees them. After Close
// it does nothing and ready is closed.
func (b *Broker) Subscribe(room string, deliver func(payload []byte)) (cancel func(), ready <-chan struct{}) {
	return b.subscribe(roomKey(room), &subscription{deliver: deliver})
}

// subscribe adds s to stream's subscriptions.
func (b *Broker) subscribe(stream string, s *subscription) (cancel func(), ready <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed.Load() {
		return func() {}, closedReady
	}
	b.start.Do(func() {
		b.wg.Add(1)
		go b.listen()
	})
	old := b.subs[stream]
	b.subs[stream] = append(old[:len(old):len(old)], s)
	switch {
	case b.listening[stream]:
		ready = closedReady
	case b.down:
		ready = closedReady // and LISTENed once PostgreSQL is back
		b.markDirty(stream)
	default:
		w := b.waiting[stream]
		if w == nil {
			w = &waiter{ready: make(chan struct{})}
			w.timer = time.AfterFunc(maxReadyWait, func() { b.releaseKey(stream, w) })
			b.waiting[stream] = w
		}
		ready = w.ready
		b.markDirty(stream)
	}
	var once sync.Once
	return func() { once.Do(func() { b.unsubscribe(stream, s) }) }, ready
}

func (b *Broker) unsubscribe(key string, s *subscription) {
	s.cancelled.Store(true)
	b.mu.Lock()
	defer b.mu.Unlock()
	old := b.subs[key]
	next := make([]*subscription, 0, len(old))
	for _, x := range old {
		if x != s {
			next = append(next, x)
		}
	}
	if len(next) > 0 {
		b.subs[key] = next
		return
	}
	delete(b.subs, key) // s was its last subscription
	b.markDirty(key)
}

// markDirty records that key's LISTEN may have to change and interrupts
// the listener's wait. b.mu is held.
func (b *Broker) markDirty(key string) {
	b.dirty[key] = struct{}{}
	if b.interrupt != nil {
		b.interrupt()
		b.interrupt = nil
	}
}

// releaseKey closes w's ready if it is still key's waiter: its time is up.
func (b *Broker) releaseKey(key string, w *waiter) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.waiting[key] == w {
		delete(b.waiting, key)
		close(w.ready)
	}
}

// releaseWaiting closes the ready of every waiting subscription, or of
// those whose key is now listened (all false). b.mu is held.
func (b *Broker) releaseWaiting(all bool) {
	for key, w := range b.waiting {
		if all || b.listening[key] {
			w.timer.Stop()
			close(w.ready)
			delete(b.waiting, key)
		}
	}
}

// Stats is a snapshot of a Broker's counters; totals count from New.
// The counters natsbroker and redisbroker also have carry the same names
// and meanings; FromLog, Missed and Unavailable are PostgreSQL's own.
// There is no SyncErrors: a failed read of the log ends the listening
// connection (ConnErrors), and the next one reads from the same position
// again, so a failure never skips a record.
type Stats struct {
	Rooms            int   // rooms subscribed now (rooms with local members), by Subscribe, SubscribeRecorded or both
	Published        int64 // publishes PostgreSQL committed
	PublishErrors    int64 // publishes that returned an error
	Received         int64 // other processes' publishes handed to local rooms
	Echoes           int64 // this Broker's own publishes received back and dropped
	Malformed        int64 // notifications dropped for a malformed payload, and presence rows skipped that are not an entry's JSON
	ConnErrors       int64 // failures of the listening connection, and failed attempts to connect it
	FromLog          int64 // of Received and ReceivedRecorded, those read from the log: too long for a notification, or missed while the listener was away
	Missed           int64 // publishes the listener missed and found trimmed from the log
	Recorded         int64 // records PostgreSQL committed
	RecordErrors     int64 // records that returned an error
	ReceivedRecorded int64 // every process's records handed to local recorded subscriptions, CaughtUp included
	CaughtUp         int64 // of those, read from the log: missed while the listener was away, after a gap, or too long for a notification
	Duplicates       int64 // notifications dropped because their message had already been read from the log
	Gaps             int64 // recorded streams this listener gave a new epoch, having found records it missed trimmed from the log
	Unavailable      int64 // calls (publishes, records, History, presence) failed at once with ErrUnavailable, without trying PostgreSQL
}

// Stats returns a snapshot of the Broker's counters.
func (b *Broker) Stats() Stats {
	b.mu.Lock()
	rooms := 0
	for stream := range b.subs { // a room subscribed to both streams counts once
		if key, ok := strings.CutPrefix(stream, "h"); !ok || !isRecorded(stream) || len(b.subs[key]) == 0 {
			rooms++
		}
	}
	b.mu.Unlock()
	return Stats{
		Rooms:            rooms,
		Published:        b.published.Load(),
		PublishErrors:    b.publishErrors.Load(),
		Received:         b.received.Load(),
		Echoes:           b.echoes.Load(),
		Malformed:        b.malformed.Load(),
		ConnErrors:       b.connErrors.Load(),
		FromLog:          b.fromLog.Load(),
		Missed:           b.missed.Load(),
		Recorded:         b.recorded.Load(),
		RecordErrors:     b.recordErrors.Load(),
		ReceivedRecorded: b.receivedRecorded.Load(),
		CaughtUp:         b.caughtUp.Load(),
		Duplicates:       b.duplicates.Load(),
		Gaps:             b.gaps.Load(),
		Unavailable:      b.breaker.rejected.Load(),
	}
}

// Close waits for publishes and records in progress, closes the listening connection
// and waits for the Broker's goroutines to end: once it returns, no
// deliver func is running or will be called, and the Broker makes no more
// use of the pool, which the caller may then close (Close does not).
// Later publishes and records return ErrClosed, later History calls
// fail, and later subscriptions do nothing.
// Close is safe to call more than once and returns nil; the error is
// there for io.Closer.
func (b *Broker) Close() error {
	b.mu.Lock() // a Subscribe in progress has started the listener, or will see closed
	if b.closed.Swap(true) {
		b.mu.Unlock()
		return nil
	}
	b.mu.Unlock()
	b.publishing.Lock() // publishes in progress have ended; later ones fail
	b.publishing.Unlock()
	b.cancel() // ends the listener's wait and the trimmer's
	b.wg.Wait()
	b.mu.Lock()
	b.releaseWaiting(true)
	b.mu.Unlock()
	return nil
}
