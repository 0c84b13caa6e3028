// Package natsbroker joins wsroom rooms across processes through NATS: a
// [wsroom.Broker] on a [nats.Conn] that the application creates, owns and
// closes, and, on a server with JetStream, a [wsroom.HistoryBroker] that
// keeps rooms' histories in a stream (see History) and, made
// [WithPresence], a [wsroom.PresenceBroker] (see Presence).
//
//	nc, err := nats.Connect(url, nats.MaxReconnects(-1))
//	b, err := natsbroker.New(ctx, nc)
//	rooms := wsroom.NewRooms[Msg](wsroom.WithBroker(b))
//
// # Subjects
//
// A room's messages travel on the subject "<prefix>.<token>", the prefix
// being "wsroom" unless [WithPrefix] says otherwise. The token is the room's
// name when it is made only of ASCII letters, digits, '-' and '_'; any other
// byte is escaped as %XX ("a.b" → "a%2Eb", "ü" → "%C3%BC", "%" → "%25"), the
// empty name is "%", and a name whose escaped form is longer than 200 bytes
// becomes "%%" and the base64url SHA-256 of the name. No name is refused
// and none can add a token or a wildcard to a subject, so rooms stay apart
// whatever their names; [Broker.Subject] gives a room's subject. Every
// process of a service must use the same prefix, and its NATS user needs
// publish and subscribe permission on "<prefix>.>". Rooms' histories use
// "<prefix>.history.<token>" and "<prefix>.recorded.<token>", which no
// room's subject can be (a token has no '.'), and JetStream (see History
// and [WithHistory]).
//
// # Messages
//
// The payload published to NATS is exactly the JSON local members receive.
// Each message carries the publishing Broker's random id in the
// [OriginHeader] header, and a Broker drops its own messages when NATS hands
// them back (the core has already delivered them locally), counting them in
// Echoes of [Broker.Stats]. A message without that header did not come
// from a wsroom process: it is counted in Malformed and dropped. Other
// messages go to the room, which checks that they are valid UTF-8 JSON (and
// decode as the room's type where a func subscriber needs it) and counts
// the rest in RemoteInvalid of [wsroom.Rooms.Stats]. The header is not
// authentication: whoever may publish on the prefix may publish into rooms,
// so NATS permissions are the boundary. A program that is not a wsroom
// process can publish into a room by sending JSON to [Broker.Subject] with
// any non-empty [OriginHeader] of its own. Headers need nats-server 2.2 or
// later.
//
// One publisher's messages keep their order (one connection, one
// subscription per room, delivered by nats.go from one goroutine). Delivery
// is NATS core's: at most once, nothing is stored for a process that is
// away.
//
// A new room's subscription is confirmed by a round trip to the server
// (one PING for every subscription made in the meantime), and the room
// waits for that before Subscribe or Join returns: once a member's join
// has returned, every message another process publishes to the room from
// then on reaches it, as long as both stay connected. The wait is one
// round trip on a healthy connection, and at most the subscribe timeout
// ([WithSubscribeTimeout], 1 s by default) on one that does not answer.
//
// # Outages
//
// While the connection is not connected (nats.go is reconnecting, or has
// not connected yet), Publish returns at once an error wrapping
// [ErrNotConnected] ("natsbroker: not connected to NATS (connection
// RECONNECTING)"); [wsroom.Room.Publish] returns it wrapped in
// [wsroom.ErrBroker], so errors.Is holds for both, and the room counts it
// in BrokerErrors of [wsroom.Rooms.Stats]. Local members have the message
// regardless; Join does not fail, its announcement just stays local.
// Publish reads the status without nats.go's connection lock (a watcher
// keeps it from nats.go's status events), so it fails at once even while
// nats.go is in the middle of a reconnect attempt, which holds that lock
// while it dials and handshakes (up to the connection's Timeout, 2 s by
// default, against a server that accepts and does not answer). Subscribe
// and cancel do take the lock: in that window they wait for the attempt.
// Broker publishes never go into nats.go's reconnect buffer, so whatever
// ReconnectBufSize the connection has, an outage is visible to the caller
// and nothing published during it arrives late. What cannot be seen is a
// connection that is already dead but not yet noticed: publishes then are
// lost without an error until nats.go notices, which is at once when the
// server closes the socket, but only after up to (MaxPingsOut+1) ×
// PingInterval, 6 minutes by default, when the network silently drops the
// connection: lower PingInterval to shorten that. A join that subscribes
// a new room on such a connection waits for the subscribe timeout.
//
// Joining a room, or creating one, during an outage does not wait for
// NATS: Subscribe's ready is closed at once, so Subscribe and Join return
// at once, and the member receives local messages from then on. When the
// connection comes back, nats.go subscribes again every room that has
// local members, new ones included, before it reports itself connected:
// no user code is needed. From then on the member receives what other
// processes publish; what they published meanwhile is lost, as NATS core
// keeps nothing, and a process that reconnects first may publish before
// this one has subscribed again. nats.go keeps trying only so long: by
// default it gives up after 60 attempts (about 2 minutes) and closes the
// connection for good, after which rooms stay local, Publish fails and
// Subscribe is refused. Use nats.MaxReconnects(-1) for a service that must
// outlive any outage; nats.RetryOnFailedConnect(true) lets it start before
// NATS is up.
//
// # History
//
// A Broker is a [wsroom.HistoryBroker]: rooms of a registry with history
// (wsroom.WithHistory) record through it, and their histories live in one
// JetStream stream, so positions and order are the same in every
// process. The stream is "<prefix>_history" (the prefix escaped as a room
// name is: "wsroom_history" by default), on file storage, with subjects
// "<prefix>.history.*": room R's records are stored on
// "<prefix>.history.<R's token>". Each room keeps its last size records
// (MaxMsgsPerSubject, exact), each for ttl after it was recorded (MaxAge);
// see [WithHistory] for what the server must allow. New makes the stream
// when given WithHistory, or the first Record or SubscribeRecorded does;
// of a stream that exists it sets only those fields, and keeps the rest
// (replicas, placement, storage) as an operator made them. A Record that
// finds no stream makes it again.
//
// JetStream numbers a stream's messages, not a room's, so a record
// carries its position in headers, [EpochHeader] and [OffsetHeader], and
// is published with Nats-Expected-Last-Subject-Sequence set to the stream
// sequence of the room's last record as this process knows it (0 for
// none): JetStream stores it only if that is still the room's last, so
// each offset is taken once and a room's offsets have no gap. A record
// that loses that race to another process's reads the room's last record
// and tries again (Stats.Conflicts), for at most 2 seconds in all. A
// process knows a room's last record from its own records and from its
// recorded subscription of the room, so one that records alone into a
// room, or hears the room's records, publishes at once: one round trip.
// A process's records of one room go one at a time, and never race each
// other. Two processes recording back to back into one room retried 3.6
// to 5.7% of their records, four 57 to 79% (see the README); a record
// that has not won within the 2 seconds fails (see Record).
//
// A room without a record in the stream (new, all its records expired,
// or the stream deleted or lost) starts a new epoch at its next Record:
// the Broker's id and a count. The epoch is in the records, so it lasts
// as long as the room's newest record does. Records expire one by one,
// ttl after each was recorded, even while the room is busy (Redis keeps a
// room's whole history until ttl after its last record): a client away
// for longer than ttl is not recovered, and once a room's last record has
// expired its history is lost and it starts over.
//
// Once stored, the stream republishes each record, in the order it
// stored them, on "<prefix>.recorded.<R's token>" (RePublish, core
// NATS), with its stream sequence. SubscribeRecorded subscribes that
// subject and keeps a cursor, the position of the last record it
// delivered: the next offset is delivered, one at or below it is dropped
// (Stats.Duplicates), and one further on, or of another epoch, makes it
// read the room's records after the cursor from the stream first, through
// an ephemeral consumer of its own (in memory, without acknowledgements,
// deleted afterwards). It reads the room's last record once the server
// has the subscription (ready is closed then), and catches up from the
// cursor after each reconnection. What the stream no longer has is
// skipped: deliver sees an offset jump, or the new epoch from its first
// offset (Stats.Gaps). A republish that NATS loses (a slow consumer, a
// connection that fails) is noticed at the room's next record or the
// next reconnection, and the record is delivered then, not before.
//
// History reads the room's last record, then, if there is something to
// return, the room's records through an ephemeral consumer: all of them
// (at most size), since JetStream starts a read at a stream sequence, not
// at a room's offset. For a room without records it returns a new epoch
// that nothing keeps (the next Record draws its own): wsroom only tells
// that client it was not recovered, and the client takes the epoch of the
// next record it receives.
//
// Record and History fail at once with an error wrapping [ErrNotConnected]
// while the connection is not connected. An error from Record means the
// message was most likely not recorded, but an acknowledgement lost after
// JetStream stored it (a network that stalls, a connection lost meanwhile)
// leaves it recorded and delivered to every process, while the publisher
// is told wsroom.ErrNotRecorded. A record is never stored twice: Record
// sends each message once, and JetStream refuses a record whose expected
// last sequence is no longer the room's last. The tests run one
// nats-server; JetStream clusters are not tested.
//
// # Presence
//
// A Broker made [WithPresence] keeps rooms' presence in JetStream, and
// wsroom uses it as a [wsroom.PresenceBroker] ([Broker.KeepsPresence]);
// without the option, presence is each process's own. Every entry is one
// message of the stream "<prefix>_presence" (file storage, one message
// per subject, per-message TTLs allowed) on its own subject
// "<prefix>.presence.<room's token>.<ID's token>", tokens as for rooms'
// subjects, so no room's name and no entry's ID reaches another's. The
// message is the entry's JSON (wsroom.PresenceRecord's) with its lease,
// in milliseconds, in [LeaseHeader].
//
// Leases run on the server's clock: an entry's lease starts when
// JetStream stored its message (the message's timestamp, which the
// server sets), and a read compares it with the server's time when the
// read began (the timestamp of the read's consumer). Per-message TTLs
// are not the lease: they count whole seconds, one at least, and an
// entry whose TTL ran out would vanish with its leave message, which a
// survivor must publish. A TTL of four leases (a minute at least) only
// clears what nobody claimed, when a room's every process has died.
//
// A refresh stores the entry again, whole (JetStream cannot renew a
// message in place), with Nats-Expected-Last-Subject-Sequence set to
// the sequence this Broker stored it at: an entry nobody touched is
// renewed, one that was claimed, dropped or lost is refused, and the
// caller puts it again. A claim reads the room's entries and deletes
// each expired one by its stream sequence: JetStream deletes a sequence
// once, so of the processes claiming at once one alone gets each entry,
// and a refresh that came first gave the entry a new sequence, so it is
// not claimed. An acknowledgement of a delete lost on the way (a
// timeout) leaves that entry deleted and not announced. A read is three
// JetStream API requests (make an ephemeral consumer, fetch the room's
// entries, delete the consumer), a put, a refresh or a drop one per
// entry, up to 32 at once. An entry takes about 380 bytes of the stream;
// 10,000 members in 100 rooms cost the server about 2,200 messages a
// second each way, 690 KB/s in and 90 KB/s out (see the README).
//
// Presence calls fail at once with an error wrapping [ErrNotConnected]
// while the connection is not connected. A server that comes back
// without its store has lost the stream: the next refresh finds no
// stream and reports every entry missing, and putting them again makes
// the stream again. The tests run one nats-server; in a JetStream
// cluster a message's timestamp is the stream leader's clock and a
// read's the consumer leader's, which is not tested.
//
// # Versions
//
// The package builds with nats.go v1.49.0 and go 1.24, but its tests run a
// real server from github.com/nats-io/nats-server/v2, and a test dependency
// is a requirement of the module like any other: nats-server v2.14.5 (later
// releases need go 1.26) requires nats.go v1.51.0 and go 1.25.0, so
// minimal version selection gives every user of this module nats.go
// v1.51.0 or later, and the module requires exactly that, with the lowest
// go line those allow: go 1.25.0, the one line of the three adapter
// modules.
package natsbroker

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/wsroom/wsroom"
)

// OriginHeader is the NATS header that carries the id of the Broker that
// published a message.
const OriginHeader = "Wsroom-Origin"

// DefaultPrefix is the subject prefix of rooms unless WithPrefix sets
// another.
const DefaultPrefix = "wsroom"

var (
	// ErrNotConnected is wrapped by the error Publish returns while the
	// connection is reconnecting, disconnected or not yet connected.
	ErrNotConnected = errors.New("natsbroker: not connected to NATS")
	// ErrClosed is returned by Publish, Record and History after Close.
	// It wraps wsroom.ErrBroker, as every adapter's ErrClosed does.
	ErrClosed error = closedError{}
)

// closedError is ErrClosed: it names the adapter and unwraps to
// wsroom.ErrBroker without repeating its text.
type closedError struct{}

func (closedError) Error() string { return "natsbroker: broker closed" }
func (closedError) Unwrap() error { return wsroom.ErrBroker }

// Broker is a wsroom.Broker over NATS core publish/subscribe. It is safe
// for concurrent use. Give each Rooms registry its own Broker: a Broker
// stands for one process, and drops what it published itself.
type Broker struct {
	nc     *nats.Conn
	prefix string
	id     string
	header nats.Header // {OriginHeader: {id}}, shared read-only by every publish

	mu                 sync.Mutex
	subs               map[*subscription]struct{}
	rsubs              map[*recSub]struct{}
	droppedSlowRetired int64       // DroppedSlow of the subscriptions ended
	closed             atomic.Bool // set under mu; read without it by Publish

	published, publishErrors, received, echoes, malformed atomic.Int64
	subscribeErrors                                       atomic.Int64

	confirm confirmer      // closes new subscriptions' ready
	watch   statusWatch    // the connection's status, for Publish
	hist    history        // rooms' histories, in JetStream
	pres    presence       // rooms' presence, in JetStream
	syncs   sync.WaitGroup // recorded subscriptions' syncs under way
	ctx     context.Context
	stopCtx context.CancelFunc // on Close: ends reads of the stream in progress
}

var _ wsroom.Broker = (*Broker)(nil)

// subscription is one room's subscription on NATS.
type subscription struct {
	room    string
	deliver func([]byte)
	sub     *nats.Subscription
	mu      sync.Mutex  // held while delivering, so that Close can wait for a delivery
	done    atomic.Bool // ended: deliver no more
}

// An Option configures a Broker.
type Option func(*config)

// config is what the options set; New checks it.
type config struct {
	prefix           string
	subscribeTimeout time.Duration
	historySize      int
	historyTTL       time.Duration
	history          bool // WithHistory: make the stream in New
	presence         bool // WithPresence: keep presence, make its stream in New
}

// DefaultSubscribeTimeout is how long a subscription's ready waits for
// the server's confirmation unless WithSubscribeTimeout sets another.
const DefaultSubscribeTimeout = time.Second

// WithSubscribeTimeout bounds how long a new subscription's ready waits
// for the server to confirm it (see Broker.Subscribe), and so how long a
// join waits for NATS on a connection that is up but does not answer. Past
// it ready is closed anyway and the member is in the room locally, and
// remotely once the server has caught up. It must be positive (New fails
// otherwise); the default is DefaultSubscribeTimeout. Rooms never wait
// longer than wsroom.BrokerReadyTimeout, whatever the timeout.
func WithSubscribeTimeout(d time.Duration) Option {
	return func(c *config) { c.subscribeTimeout = d }
}

// WithPrefix sets the subject prefix: room R's messages travel on
// "<prefix>.<R encoded as one token>". The prefix is one or more
// '.'-separated tokens of printable ASCII without '*' or '>' (New fails
// on any other); every process of a service must use the same one. The
// default is DefaultPrefix.
func WithPrefix(prefix string) Option { return func(c *config) { c.prefix = prefix } }

// check returns why c is not a valid configuration, or nil.
func (c *config) check() error {
	if c.subscribeTimeout <= 0 {
		return fmt.Errorf("natsbroker: subscribe timeout %v is not positive", c.subscribeTimeout)
	}
	if !validPrefix(c.prefix) {
		return fmt.Errorf("natsbroker: prefix %q is not '.'-separated subject tokens of printable ASCII without wildcards (at most %d bytes)", c.prefix, maxPrefixLen)
	}
	if c.historySize <= 0 || c.historyTTL <= 0 {
		return fmt.Errorf("natsbroker: history of %d messages for %v: both must be positive", c.historySize, c.historyTTL)
	}
	return nil
}

// New returns a Broker that publishes and subscribes through nc. The
// connection stays the caller's: its options (reconnection, credentials,
// TLS) are the caller's to choose, and the caller closes it after the
// Broker. New does not need the server: on a connection that is not
// connected yet (nats.RetryOnFailedConnect) rooms are subscribed once it
// is. ctx bounds the one thing New may wait for, making or updating the
// history stream when WithHistory is given and nc is connected (at most
// 2 seconds in any case). New fails if nc is nil or closed, if an option
// is not valid, if nc is connected to a server without header support,
// or if WithHistory or WithPresence is given and its stream cannot be made.
func New(ctx context.Context, nc *nats.Conn, opts ...Option) (*Broker, error) {
	if nc == nil {
		return nil, errors.New("natsbroker: nil connection")
	}
	cfg := config{prefix: DefaultPrefix, subscribeTimeout: DefaultSubscribeTimeout,
		historySize: wsroom.DefaultHistorySize, historyTTL: wsroom.DefaultHistoryTTL}
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if nc.IsClosed() {
		return nil, fmt.Errorf("natsbroker: %w", nats.ErrConnectionClosed)
	}
	if nc.IsConnected() && !nc.HeadersSupported() {
		return nil, fmt.Errorf("natsbroker: %w", nats.ErrHeadersNotSupported)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("natsbroker: %w", err)
	}
	b := &Broker{nc: nc, prefix: cfg.prefix, id: rand.Text(),
		subs: map[*subscription]struct{}{}, rsubs: map[*recSub]struct{}{}}
	b.header = nats.Header{OriginHeader: []string{b.id}}
	b.confirm.nc, b.confirm.timeout = nc, cfg.subscribeTimeout
	b.hist.js, b.hist.size, b.hist.ttl = js, cfg.historySize, cfg.historyTTL
	if cfg.history && nc.IsConnected() {
		ctx, cancel := context.WithTimeout(ctx, recordTimeout)
		defer cancel()
		if _, err := b.historyStream(ctx); err != nil {
			return nil, fmt.Errorf("natsbroker: %w", err)
		}
	}
	b.pres.on = cfg.presence
	if err := b.makePresence(ctx); err != nil {
		return nil, fmt.Errorf("natsbroker: %w", err)
	}
	b.ctx, b.stopCtx = context.WithCancel(context.Background())
	b.watch.start(nc, b.resyncRecorded)
	return b, nil
}

// Subject returns the NATS subject that room's messages travel on.
func (b *Broker) Subject(room string) string { return b.prefix + "." + token(room) }

// Publish sends payload, unchanged, to room's members in other processes.
// It does not wait for the network: a nil error means nats.go took the
// message. While the connection is not connected it returns an error
// wrapping ErrNotConnected, after Close ErrClosed, and otherwise whatever
// nats.go refuses with (a closed connection, a payload over the server's
// max_payload, ...).
func (b *Broker) Publish(room string, payload []byte) error {
	err := b.publish(room, payload)
	if err != nil {
		b.publishErrors.Add(1)
		return err
	}
	b.published.Add(1)
	return nil
}

func (b *Broker) publish(room string, payload []byte) error {
	if b.closed.Load() {
		return ErrClosed
	}
	switch st := b.watch.current(); st {
	case nats.RECONNECTING, nats.DISCONNECTED, nats.CONNECTING:
		return fmt.Errorf("%w (connection %s)", ErrNotConnected, st)
	}
	if err := b.nc.PublishMsg(&nats.Msg{Subject: b.Subject(room), Header: b.header, Data: payload}); err != nil {
		return fmt.Errorf("natsbroker: publish: %w", err)
	}
	return nil
}

// Subscribe hands deliver the payloads other processes publish to room,
// one at a time and in order, until cancel is called. Neither Subscribe nor
// cancel waits for the network: nats.go buffers the subscription, sends it
// when it can and again after every reconnection. Both take the
// connection's lock, which nats.go holds while it writes buffered protocol
// to the socket, and during a reconnect attempt while it dials and
// handshakes (see Outages).
//
// ready is closed once the server has the subscription, which a round
// trip behind it confirms (one PING for all the subscriptions made
// meanwhile), or after the subscribe timeout (WithSubscribeTimeout) if no
// answer comes. While the connection is not connected, ready is already
// closed when Subscribe returns: the subscription takes effect once
// nats.go has reconnected and subscribed again. If NATS refuses the
// subscription (the connection is closed or draining), or the Broker is
// closed, ready is already closed too and nothing is delivered; the
// refusal is counted in Stats().SubscribeErrors.
func (b *Broker) Subscribe(room string, deliver func(payload []byte)) (cancel func(), ready <-chan struct{}) {
	s := &subscription{room: room, deliver: deliver}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed.Load() {
		return func() {}, closedChan
	}
	sub, err := b.nc.Subscribe(b.Subject(room), func(m *nats.Msg) { b.receive(s, m) })
	if err != nil {
		b.subscribeErrors.Add(1)
		return func() {}, closedChan
	}
	s.sub = sub
	b.subs[s] = struct{}{}
	cancel = func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if _, ok := b.subs[s]; ok {
			delete(b.subs, s)
			b.stop(s)
		}
	}
	return cancel, b.confirm.add()
}

// stop ends s; b.mu is held. Unsubscribe does not wait for the network.
func (b *Broker) stop(s *subscription) {
	s.done.Store(true)
	b.retire(s.sub)
}

// retire unsubscribes sub, keeping the count of the messages it dropped
// for Stats; b.mu is held. Unsubscribe fails only once the connection is
// closed, which ended sub anyway.
func (b *Broker) retire(sub *nats.Subscription) {
	b.droppedSlowRetired += dropped(sub)
	_ = sub.Unsubscribe()
}

// dropped returns how many messages sub dropped as a slow consumer.
func dropped(sub *nats.Subscription) int64 {
	n, err := sub.Dropped()
	if err != nil {
		return 0
	}
	return int64(n)
}

// receive handles one message from NATS for s.
func (b *Broker) receive(s *subscription, m *nats.Msg) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done.Load() {
		return
	}
	switch m.Header.Get(OriginHeader) {
	case b.id:
		b.echoes.Add(1)
	case "":
		b.malformed.Add(1)
	default:
		b.received.Add(1) // counted before anyone can see the message
		s.deliver(m.Data)
	}
}

// Close ends every subscription the Broker holds, waits for the
// deliveries under way and for the Broker's goroutines, and makes
// Publish, Record and History fail with ErrClosed; rooms keep working
// locally. Once it has returned no deliver func is running or will be
// called. It does not close or flush the connection, which stays the
// caller's (nc.Drain or nc.Flush make sure what was published reached
// the server). Close is idempotent and returns nil; the error is there
// for io.Closer.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.closed.Swap(true) {
		b.mu.Unlock()
		return nil
	}
	subs, rsubs := b.subs, b.rsubs
	for s := range subs {
		b.stop(s)
	}
	for s := range rsubs {
		b.stopRecorded(s)
	}
	b.subs, b.rsubs = nil, nil
	b.mu.Unlock()
	b.stopCtx()
	b.watch.end()
	b.syncs.Wait()
	for s := range subs { // a delivery under way ends; none starts, as s is done
		s.mu.Lock()
		s.mu.Unlock()
	}
	for s := range rsubs {
		s.mu.Lock()
		s.mu.Unlock()
	}
	return nil
}

// Stats is a snapshot of a Broker's counters; totals count from New.
// The counters redisbroker and pgbroker also have carry the same names
// and meanings; the others are NATS's own.
type Stats struct {
	Rooms           int   // rooms subscribed now (rooms with local members), by Subscribe, SubscribeRecorded or both
	Published       int64 // payloads nats.go took
	PublishErrors   int64 // Publish calls that returned an error
	Received        int64 // messages from other processes handed to rooms
	Echoes          int64 // this Broker's own messages back from NATS, dropped
	Malformed       int64 // messages without an OriginHeader, and records without a position, dropped
	DroppedSlow     int64 // messages nats.go dropped because a room's subscription was past its pending limits
	SubscribeErrors int64 // subscriptions NATS refused
	Unconfirmed     int64 // subscriptions ready without the server's confirmation: made while disconnected, or unanswered within the subscribe timeout
	Subscriptions   int64 // NATS subscriptions made by Subscribe and held now

	// History (see "History" in the package doc).
	Recorded         int64 // Record calls that returned a position
	RecordErrors     int64 // Record calls that returned an error
	Conflicts        int64 // records that lost a race for their offset to another process's and were tried again
	ReceivedRecorded int64 // records handed to recorded subscriptions, CaughtUp included
	CaughtUp         int64 // of those, read from the stream after a gap or a reconnection
	Gaps             int64 // jumps a recorded subscription delivered: what the stream no longer had, or could not be read
	Duplicates       int64 // republished records dropped as delivered already
	SyncErrors       int64 // reads of the stream for a recorded subscription that failed

	RecordedSubscriptions int64 // NATS subscriptions made by SubscribeRecorded and held now
}

// Stats returns a snapshot of the Broker's counters.
func (b *Broker) Stats() Stats {
	st := Stats{
		Published:       b.published.Load(),
		PublishErrors:   b.publishErrors.Load(),
		Received:        b.received.Load(),
		Echoes:          b.echoes.Load(),
		Malformed:       b.malformed.Load(),
		SubscribeErrors: b.subscribeErrors.Load(),
		Unconfirmed:     b.confirm.unconfirmed.Load(),

		Recorded:         b.hist.recorded.Load(),
		RecordErrors:     b.hist.recordErrors.Load(),
		Conflicts:        b.hist.conflicts.Load(),
		ReceivedRecorded: b.hist.receivedRecorded.Load(),
		CaughtUp:         b.hist.caughtUp.Load(),
		Gaps:             b.hist.gaps.Load(),
		Duplicates:       b.hist.duplicates.Load(),
		SyncErrors:       b.hist.syncErrors.Load(),
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	st.Subscriptions, st.RecordedSubscriptions = int64(len(b.subs)), int64(len(b.rsubs))
	rooms := make(map[string]struct{}, len(b.subs)+len(b.rsubs))
	st.DroppedSlow = b.droppedSlowRetired
	for s := range b.subs {
		rooms[s.room] = struct{}{}
		st.DroppedSlow += dropped(s.sub)
	}
	for s := range b.rsubs {
		rooms[s.room] = struct{}{}
		st.DroppedSlow += dropped(s.sub)
	}
	st.Rooms = len(rooms)
	return st
}
