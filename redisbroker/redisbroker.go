// Package redisbroker is a wsroom.Broker on Redis pub/sub, and a
// wsroom.HistoryBroker on Redis streams: a room spans every process whose
// Broker uses the same Redis server and prefix.
//
//	client := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
//	broker, err := redisbroker.New(ctx, client, redisbroker.WithPrefix("chat"))
//	defer broker.Close()
//	rooms := wsroom.NewRooms[Msg](wsroom.WithBroker(broker))
//
// # Channels
//
// Room r is the Redis channel "<prefix>:<r>" (the prefix is "wsroom" unless
// WithPrefix changes it). Channel names are binary-safe and the broker only
// ever uses SUBSCRIBE, never PSUBSCRIBE, so no room name is a pattern: "*",
// "[abc]" or "" are rooms like any other, and for a given prefix distinct
// rooms are distinct channels. Deployments that must not hear each other
// need distinct prefixes, neither of which is the other followed by ':'
// ("app" and "app:x" overlap: room "x:r" of the first is room "r" of the
// second).
//
// # One subscription connection
//
// A Broker holds one Redis pub/sub connection for all its rooms, whatever
// their number: a room's first local member SUBSCRIBEs its channel on that
// connection and the room's last leaving member UNSUBSCRIBEs it. Subscribe
// and its cancel func never wait for the network: they record the room and
// hand the change to the goroutine that owns the connection, which applies
// changes in order and coalesces a subscribe, cancel and subscribe of one
// room in quick succession. Messages are read and handed to the rooms by a
// single goroutine, so a room's deliver func is never called concurrently
// and sees messages in the order Redis relayed them.
//
// Subscribe's ready is closed once Redis has applied the room's
// SUBSCRIBE, so that a member who has joined receives every message
// published from then on, from any process. Redis answers a connection's
// commands in order: after writing SUBSCRIBEs the owner writes a PING
// with a numbered payload on the same connection, and its PONG means
// Redis has applied every command written before it. A subscription
// waits for the first PING written after its own SUBSCRIBE, so the PONG
// of an earlier subscription of the same room (subscribed, cancelled and
// subscribed again) releases nobody before the SUBSCRIBE that counts. A
// room whose subscription is already confirmed is ready at once. Joining
// a new room therefore costs one round trip to Redis.
//
// # Echoes and bad bytes
//
// Redis hands a subscriber every message of its channels, its own
// included, and has no message headers, so every message goes out in an
// envelope naming the Broker that published it: "wsr1:", the Broker's id
// (16 lowercase hexadecimal digits, drawn at random by New), ":", then the
// payload's bytes unchanged. A Broker drops its own messages on receipt
// (Stats.Echoes). Another program can publish into a room by sending the
// same with an id of its own. Messages without a
// well-formed envelope (published by something else, or truncated) are
// dropped and counted (Stats.Malformed); the payload of a well-formed one
// is handed to the room as it is, and wsroom validates it (Rooms.Stats
// counts what is not valid UTF-8 JSON in RemoteInvalid).
//
// # Failures
//
// Publish waits for Redis to take the message, for at most the publish
// timeout (one second unless WithPublishTimeout says otherwise), so that
// the order of one publisher's messages holds and a publish that did not
// reach Redis is an error its caller sees. The timeout bounds waiting for a
// connection, dialling and go-redis's retries; a socket read or write
// already under way is bounded by the client's ReadTimeout and WriteTimeout
// (five seconds each by default) unless the client is made with
// ContextTimeoutEnabled, which makes the publish timeout bound everything.
// go-redis retries a publish whose connection failed, so across a failure a
// message may arrive twice, never out of order.
//
// While Redis is down no publisher waits. The first publish to fail
// returns go-redis's error (a dial or network error, or the context's
// deadline) within the publish timeout. Later ones fail at once with
// ErrUnavailable, without trying Redis, while a probe in the background
// pings Redis with a backoff that grows from 50ms to 250ms; when Redis
// answers it, or the subscription connection reads again, publishes go to
// Redis again. (Were a publish to wait on a down Redis, its handler would
// read the client's next messages late and publish them after the
// outage, into rooms other instances have not yet subscribed again.)
// Every such error names the room ("redisbroker: publish to room ...");
// wsroom's Room.Publish wraps it in wsroom.ErrBroker, so errors.Is holds
// for wsroom.ErrBroker and for what Publish returned (ErrUnavailable, or
// ErrClosed after Close). Local members have the message all the same.
//
// Joining a room does not wait during an outage. While the Broker knows
// Redis is unreachable (a publish failed and none has succeeded since, or
// the subscription connection failed a read or write and has not read
// since), Subscribe's ready is closed at once, and the subscriptions
// waiting for a PONG are released when the Broker learns of it; a PONG
// that does not come within a second (or the health-check interval, if
// shorter) releases them too.
// The room is subscribed all the same: when the subscription connection
// fails (Redis restarted, the network went away), go-redis dials again
// and subscribes the connection to every room that has local members,
// those joined during the outage included, and from then on members
// receive other processes' messages again. The Broker keeps receiving
// with a backoff of up to 250ms between attempts. Messages published
// while the connection is down are lost: Redis pub/sub keeps nothing.
//
// A connection that stays silent is probed with a PING after the
// health-check interval (five seconds unless WithHealthCheck says
// otherwise) and replaced if nothing arrives within another interval, so
// a half-open connection does not leave rooms deaf.
//
// # History
//
// A Broker is a wsroom.HistoryBroker: rooms of a registry with history
// (wsroom.WithHistory) record through it, and their histories live in
// Redis, so positions and order are the same in every process. Room r has
// two keys:
//
//	<prefix>:{<h>}m:<r>   a hash: the room's epoch and last offset
//	<prefix>:{<h>}s:<r>   a stream: the messages, entry ID "<offset>-0", field "d"
//
// where h is 16 hexadecimal digits of the FNV-1a hash of r: a hash tag
// that puts both keys in one Redis Cluster slot (Cluster is not tested).
// The room's name follows unchanged, so distinct rooms have distinct keys.
//
// Record runs one Lua script (EVALSHA, then EVAL if Redis does not have
// it): it reads the hash, XADDs the payload at the next offset with
// MAXLEN ~ size, writes the new offset, refreshes both keys' TTL with
// PEXPIRE, and PUBLISHes "wsh1:<epoch>:<offset>:" and the payload to the
// room's channel, the one Publish uses. Redis runs a script alone, so the
// offsets of a room are handed out, stored and published in one order. A
// room without a hash (new, expired, or lost) starts a new epoch, drawn
// by the Broker (its id and a count, so no epoch recurs), and its stream
// is deleted first, in case it outlived the hash. History reads the hash
// and the stream in one script too; for a room without a hash it creates
// one, with a new epoch and offset 0, so that the epoch History reports is
// the one the next Record uses.
//
// Trimming with ~ keeps at least the last size messages (WithHistory;
// 1000 by default) and up to a stream node more (stream-node-max-entries,
// 100 by default). Both keys expire their TTL (5 minutes by default) after
// the room's last Record, so a room's history outlives its last member by
// that long. A Redis restart without persistence, FLUSHALL, or eviction
// of the hash gives every room a new epoch at its next Record or History:
// positions of the old epoch are never complete, and wsroom tells those
// clients they were not recovered.
//
// SubscribeRecorded shares the room's channel, and its one SUBSCRIBE, with
// Subscribe; the envelopes tell records from publishes, and records are
// delivered to their own process too. The receiving goroutine keeps each
// room's cursor, the last position it delivered: a record at the next
// offset is delivered, one at or below it dropped (Stats.Duplicates), and
// one further on, or of another epoch, makes it read the stream after the
// cursor first. It reads the stream after every SUBSCRIBE confirmation of
// the room too: the first sets the cursor to the room's last offset (ready
// is closed then), and those go-redis gets when it subscribes a new
// connection catch up from the cursor, before anything that arrives live
// after them. A subscriber that was away longer than the stream keeps
// skips what was trimmed: it sees the offset jump, or a new epoch start at
// the first offset the stream still has, and Stats.Gaps counts it. If
// reading the stream fails, delivery goes on from the next live record,
// with a gap (Stats.SyncErrors).
//
// Record fails like Publish: at once with ErrUnavailable while Redis is
// known unreachable, and within the publish timeout otherwise. An error
// means the message was not recorded, unless Redis ran the script and its
// reply was lost: a timeout after the script ran, or a go-redis retry of a
// failed connection, can record a message that returned an error, or
// record it twice.
//
// # Presence
//
// A Broker is a wsroom.PresenceBroker: rooms of a registry whose members
// join As a key keep their presence in Redis. Room r has two keys, under
// the hash tag of its history's:
//
//	<prefix>:{<h>}p:<r>   a hash: entry ID → the entry's JSON (wsroom.PresenceRecord)
//	<prefix>:{<h>}e:<r>   a sorted set: entry ID, scored by when its lease runs out
//
// Every operation is one Lua script, and leases run on Redis's clock
// (TIME), so the processes' clocks need not agree. PutPresence writes
// entries and their expiries; RefreshPresence moves the expiries of the
// IDs the hash holds and returns the others; DropPresence removes;
// ReadPresence returns the entries whose lease runs; ClaimExpired removes
// up to 1000 expired entries per run and returns them. Redis runs a script
// alone, so each expired entry is returned to one caller only: the
// survivor that announces it. Both keys expire four leases (a minute at
// least) after the room's last put or refresh. Put and refresh fail like
// Publish (at once with ErrUnavailable while Redis is known unreachable);
// a Redis restart that loses the keys is repaired by the next refresh,
// which puts back what is missing.
//
// # Clients and versions
//
// The client belongs to the caller, who closes it after the Broker. It is
// a *redis.Client (from redis.NewClient, or redis.NewFailoverClient for
// Sentinel), with RESP2 or RESP3; the tests run both against a real
// redis-server. A *redis.ClusterClient should work, as a cluster relays
// PUBLISH to every node, but is not tested here. A *redis.Ring does not
// work: it sends each channel's publishes to one shard while a Broker's
// subscriptions share one connection (and its Subscribe panics without a
// channel to pick a shard by).
//
// The module uses go-redis v9.22.0, the newest release that supports Go
// 1.24 and 1.25 (v9.23.0 needs Go 1.26), and the first with fixes for two
// RESP3 pub/sub bugs: releases before v9.20.1 can drop a message whose
// push header straddles a read buffer boundary (go-redis issue 3839), and
// v9.20.1 and v9.21.0 can wait forever for more bytes after a short
// subscription confirmation (issue 3935). Alone it could build with Go
// 1.24, wsroom's own line; its go line is go 1.25.0, the one line of the
// three adapter modules, set by the highest of their dependencies'
// (natsbroker's nats.go v1.51.0 and pgbroker's pgx v5.12.0 need Go 1.25),
// so that one toolchain builds every adapter.
package redisbroker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/wsroom/wsroom"
)

// Defaults of the options.
const (
	DefaultPrefix         = "wsroom"
	DefaultPublishTimeout = time.Second
	DefaultHealthCheck    = 5 * time.Second
)

// maxReadyWait bounds how long a subscription waits for Redis to confirm
// it, well within wsroom.BrokerReadyTimeout.
const maxReadyWait = time.Second

// Bounds of the backoff between attempts to reach Redis again.
const (
	minBackoff = 50 * time.Millisecond
	maxBackoff = 250 * time.Millisecond
)

// Errors of Publish, Record and History.
var (
	// ErrClosed is returned by Publish, Record, History and the presence
	// calls after Close. It wraps wsroom.ErrBroker, as every adapter's
	// ErrClosed does.
	ErrClosed error = closedError{}
	// ErrUnavailable is returned, without trying Redis, while recent
	// publishes failed: see "Failures" in the package doc.
	ErrUnavailable = errors.New("redisbroker: Redis unavailable")
)

// closedError is ErrClosed: it names the adapter and unwraps to
// wsroom.ErrBroker without repeating its text.
type closedError struct{}

func (closedError) Error() string { return "redisbroker: broker closed" }
func (closedError) Unwrap() error { return wsroom.ErrBroker }

var _ wsroom.Broker = (*Broker)(nil)

// An Option configures a Broker.
type Option func(*config)

type config struct {
	prefix         string
	publishTimeout time.Duration
	healthCheck    time.Duration
	historySize    int
	historyTTL     time.Duration
}

// WithPrefix sets the prefix of the rooms' channel names: room r is channel
// prefix + ":" + r. Processes share rooms when they use the same prefix on
// the same Redis; the default is DefaultPrefix. Any string is a valid
// prefix, the empty one included.
func WithPrefix(prefix string) Option { return func(c *config) { c.prefix = prefix } }

// WithPublishTimeout bounds how long Publish waits for Redis. It must be
// positive (New fails otherwise); the default is DefaultPublishTimeout.
// See the package doc for what the client's own timeouts add.
func WithPublishTimeout(d time.Duration) Option {
	return func(c *config) { c.publishTimeout = d }
}

// WithHealthCheck sets how long the subscription connection may stay
// silent before it is probed with a PING, and how long the probe may then
// go unanswered before the connection is replaced. It must be positive
// (New fails otherwise); the default is DefaultHealthCheck.
func WithHealthCheck(interval time.Duration) Option {
	return func(c *config) { c.healthCheck = interval }
}

// check returns why c is not a valid configuration, or nil.
func (c *config) check() error {
	switch {
	case c.publishTimeout <= 0:
		return fmt.Errorf("redisbroker: publish timeout %v is not positive", c.publishTimeout)
	case c.healthCheck <= 0:
		return fmt.Errorf("redisbroker: health-check interval %v is not positive", c.healthCheck)
	case c.historySize <= 0 || c.historyTTL <= 0:
		return fmt.Errorf("redisbroker: history of %d messages for %v: both must be positive", c.historySize, c.historyTTL)
	}
	return nil
}

// Stats is a snapshot of a Broker's counters; totals count from New.
// The counters natsbroker and pgbroker also have carry the same names
// and meanings; Unrouted is Redis's own.
type Stats struct {
	Rooms         int   // rooms subscribed now (rooms with local members)
	Published     int64 // publishes Redis took
	PublishErrors int64 // publishes that returned an error
	Received      int64 // messages from other processes handed to local rooms
	Echoes        int64 // this Broker's own messages received back and dropped
	Malformed     int64 // messages dropped for a missing or malformed envelope
	Unrouted      int64 // messages dropped for arriving after their room's last local member left
	ConnErrors    int64 // errors of the subscription connection: failures, and failed attempts to reconnect

	// History (see "History" in the package doc).
	Recorded         int64 // records Redis took
	RecordErrors     int64 // records that returned an error
	ReceivedRecorded int64 // recorded messages handed to local rooms, live or from the stream
	CaughtUp         int64 // of those, read from the stream after a lost connection or a gap
	Duplicates       int64 // recorded messages dropped as already delivered, or of an epoch gone
	Gaps             int64 // times the stream no longer had the next offset: messages skipped, or a new epoch
	SyncErrors       int64 // failures to read the stream or meta hash for a subscription
}

// Broker is a wsroom.Broker on Redis pub/sub and a wsroom.HistoryBroker
// on Redis streams. It is safe for concurrent use. Create it with New.
type Broker struct {
	client         redis.UniversalClient
	prefix         string
	publishTimeout time.Duration
	healthCheck    time.Duration
	historySize    int
	historyTTL     time.Duration
	origin         string // this Broker's id in the envelopes it publishes
	header         []byte // the envelope's header for this origin
	breaker        breaker

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	start  sync.Once
	wg     sync.WaitGroup
	ps     *redis.PubSub // created by start
	closed atomic.Bool
	// publishing is read-locked by each publish: Close takes it to wait
	// for those in progress.
	publishing sync.RWMutex

	mu    sync.Mutex
	subs  map[string][]*subscription // channel → its local subscriptions; slices are never modified, only replaced
	rsubs map[string]*recRoom        // channel → its recorded subscriptions and their cursor
	dirty map[string]struct{}        // channels whose Redis subscription may have to change
	wake  chan struct{}              // capacity 1: dirty has entries, or ready has subscriptions waiting, for the owner

	ready *readiness // which subscriptions Redis has applied; locks itself, never before mu
	// failing is set while the subscription connection is known to be
	// down: from a failed read or write until a read succeeds.
	failing atomic.Bool

	epochs atomic.Uint64 // epochs drawn by newEpoch

	published, publishErrors, received, echoes, malformed, unrouted, connErrors      atomic.Int64
	recorded, recordErrors, receivedRecorded, caughtUp, duplicates, gaps, syncErrors atomic.Int64
}

type subscription struct {
	deliver   func([]byte)
	cancelled atomic.Bool
}

// New returns a Broker publishing and subscribing through client, which
// stays the caller's: close it after the Broker. New does no I/O, so
// Redis need not be up and ctx bounds nothing (it is there for the shape
// every adapter's New has); the subscription connection is made when the
// first room is subscribed. New fails if client is nil or an option is
// not valid.
func New(_ context.Context, client redis.UniversalClient, opts ...Option) (*Broker, error) {
	if client == nil {
		return nil, errors.New("redisbroker: nil client")
	}
	cfg := config{prefix: DefaultPrefix, publishTimeout: DefaultPublishTimeout, healthCheck: DefaultHealthCheck,
		historySize: wsroom.DefaultHistorySize, historyTTL: wsroom.DefaultHistoryTTL}
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.check(); err != nil {
		return nil, err
	}
	var id [originLen / 2]byte
	_, _ = rand.Read(id[:]) // never fails (crypto/rand)
	origin := hex.EncodeToString(id[:])
	ctx, cancel := context.WithCancel(context.Background())
	return &Broker{
		client:         client,
		prefix:         cfg.prefix,
		publishTimeout: cfg.publishTimeout,
		healthCheck:    cfg.healthCheck,
		historySize:    cfg.historySize,
		historyTTL:     cfg.historyTTL,
		origin:         origin,
		header:         appendEnvelope(nil, origin, nil),
		ctx:            ctx,
		cancel:         cancel,
		subs:           map[string][]*subscription{},
		rsubs:          map[string]*recRoom{},
		dirty:          map[string]struct{}{},
		wake:           make(chan struct{}, 1),
		ready:          newReadiness(min(cfg.healthCheck, maxReadyWait)),
	}, nil
}

// channel returns the Redis channel of room.
func (b *Broker) channel(room string) string { return b.prefix + ":" + room }

// Publish sends payload to the room's members in other processes: it
// PUBLISHes the envelope (this Broker's header, then payload unchanged) to
// the room's channel and waits for Redis to take it, for at most the
// publish timeout. Messages published by one goroutine arrive in order.
func (b *Broker) Publish(room string, payload []byte) error {
	b.publishing.RLock() // Close waits for publishes in progress
	defer b.publishing.RUnlock()
	if b.closed.Load() {
		b.publishErrors.Add(1)
		return ErrClosed
	}
	if err := b.breaker.allow(); err != nil {
		b.publishErrors.Add(1)
		return fmt.Errorf("redisbroker: publish to room %q: %w", room, err)
	}
	msg := make([]byte, 0, len(b.header)+len(payload))
	msg = append(append(msg, b.header...), payload...)
	ctx, cancel := context.WithTimeout(context.Background(), b.publishTimeout)
	defer cancel()
	err := b.client.Publish(ctx, b.channel(room), msg).Err()
	b.settle(err)
	if err != nil {
		b.publishErrors.Add(1)
		return fmt.Errorf("redisbroker: publish to room %q: %w", room, err)
	}
	b.published.Add(1)
	return nil
}

// settle records the outcome of a command that tried Redis for a
// publisher (Publish, Record). An error reply (NOPERM, OOM, LOADING...) is
// Redis answering: only a failure to reach it opens the breaker and
// releases waiting joins. b.publishing is read-locked.
func (b *Broker) settle(err error) {
	unreachable := err != nil && !isServerError(err)
	if unreachable {
		b.releaseWaiting() // no subscription waits for a Redis it cannot reach
	}
	if b.breaker.done(unreachable, err) {
		b.wg.Add(1) // before Close waits: Close takes publishing first
		go b.probe()
	}
}

// Subscribe starts handing deliver the payloads other processes publish to
// room, until cancel is called. It returns at once: the room's channel is
// subscribed in the background, and ready is closed once Redis has applied
// that SUBSCRIBE (at once if the channel's subscription is already in
// effect), or once the Broker knows Redis is unreachable, or after a
// second (or the health-check interval, if shorter) without an answer.
// Messages published before ready is closed may not be delivered. After
// Close it does nothing and ready is closed.
func (b *Broker) Subscribe(room string, deliver func(payload []byte)) (cancel func(), ready <-chan struct{}) {
	ch, s := b.channel(room), &subscription{deliver: deliver}
	b.mu.Lock()
	if b.closed.Load() {
		b.mu.Unlock()
		return func() {}, closedReady
	}
	b.start.Do(b.run)
	old := b.subs[ch]
	b.subs[ch] = append(old[:len(old):len(old)], s)
	switch {
	case b.ready.isConfirmed(ch):
		ready = closedReady
	case b.failing.Load() || b.breaker.open.Load():
		ready = closedReady // and subscribed once Redis is back
	default:
		ready = b.ready.wait()
	}
	if len(old) == 0 || ready != closedReady {
		b.markDirty(ch) // or only wake the owner, to confirm ch
	}
	b.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { b.unsubscribe(ch, s) }) }, ready
}

func (b *Broker) unsubscribe(ch string, s *subscription) {
	s.cancelled.Store(true)
	b.mu.Lock()
	defer b.mu.Unlock()
	old := b.subs[ch]
	next := make([]*subscription, 0, len(old))
	for _, x := range old {
		if x != s {
			next = append(next, x)
		}
	}
	if len(next) > 0 {
		b.subs[ch] = next
		return
	}
	delete(b.subs, ch) // s was its last subscription
	b.markDirty(ch)
}

// markDirty records that ch's Redis subscription may have to change and
// wakes the owner. b.mu is held.
func (b *Broker) markDirty(ch string) {
	b.dirty[ch] = struct{}{}
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// Stats returns a snapshot of the Broker's counters.
func (b *Broker) Stats() Stats {
	b.mu.Lock()
	rooms := len(b.subs)
	for ch := range b.rsubs {
		if b.subs[ch] == nil {
			rooms++
		}
	}
	b.mu.Unlock()
	return Stats{
		Rooms:         rooms,
		Published:     b.published.Load(),
		PublishErrors: b.publishErrors.Load(),
		Received:      b.received.Load(),
		Echoes:        b.echoes.Load(),
		Malformed:     b.malformed.Load(),
		Unrouted:      b.unrouted.Load(),
		ConnErrors:    b.connErrors.Load(),

		Recorded:         b.recorded.Load(),
		RecordErrors:     b.recordErrors.Load(),
		ReceivedRecorded: b.receivedRecorded.Load(),
		CaughtUp:         b.caughtUp.Load(),
		Duplicates:       b.duplicates.Load(),
		Gaps:             b.gaps.Load(),
		SyncErrors:       b.syncErrors.Load(),
	}
}

// Close waits for publishes in progress, closes the subscription
// connection and waits for the Broker's goroutines to end: once it
// returns, no deliver func is running or will be called, and the Broker
// makes no more use of the client, which the caller may then close (Close
// does not). Later publishes return ErrClosed and later subscriptions do
// nothing. If Redis hangs, Close can take as long as the client's dial and
// read timeouts. Close is safe to call more than once.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.closed.Swap(true) {
		b.mu.Unlock()
		return nil
	}
	ps := b.ps
	b.mu.Unlock()
	b.publishing.Lock() // publishes in progress have ended; later ones fail
	b.publishing.Unlock()
	b.cancel()
	var err error
	if ps != nil {
		if err = ps.Close(); errors.Is(err, redis.ErrClosed) {
			err = nil
		}
	}
	b.wg.Wait()
	b.releaseWaiting()
	return err
}

// isServerError reports whether err is an error reply from Redis, which
// reached it, rather than a failure to reach it.
func isServerError(err error) bool {
	var re redis.Error
	return errors.As(err, &re)
}
