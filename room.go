package wsroom

import (
	"cmp"
	"encoding/json"
	"fmt"
	"iter"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Rooms is a registry of rooms of messages of type M, keyed by name. It is
// safe for concurrent use, and reading it takes no lock.
type Rooms[M any] struct {
	live     sync.Map     // name → *Room[M], for exactly the rooms that have subscribers or first ones waiting for the broker
	count    atomic.Int64 // rooms in live
	maxRooms int64
	broker   Broker
	history  *histories // nil: rooms keep no history

	// historyBroker, with history, keeps the rooms' histories and gives
	// positions; nil: this process does.
	historyBroker HistoryBroker

	presence *presences // the members present (Join with As), here and at a PresenceBroker

	brokerErrors, remoteDelivered, remoteInvalid, refused atomic.Int64
	recorded, recovered, notRecovered                     atomic.Int64
}

// NewRooms returns an empty registry.
func NewRooms[M any](opts ...RoomsOption) *Rooms[M] {
	var cfg roomsConfig
	for _, o := range opts {
		o(&cfg)
	}
	rs := &Rooms[M]{broker: cfg.broker, maxRooms: int64(cfg.maxRooms), presence: newPresences(cfg)}
	rs.presence.announce = rs.announceLeave
	if cfg.history {
		if err := checkRecordable[M](cfg); err != nil {
			panic(err)
		}
		rs.history = newHistories(cmp.Or(cfg.historySize, DefaultHistorySize),
			cmp.Or(cfg.historyTTL, DefaultHistoryTTL), cmp.Or(cfg.historyBytes, DefaultHistoryBytes))
		rs.historyBroker, _ = cfg.broker.(HistoryBroker)
	}
	return rs
}

// reserve counts a room just inserted, unless that passes the cap.
func (rs *Rooms[M]) reserve() bool {
	if rs.count.Add(1) > rs.maxRooms && rs.maxRooms > 0 {
		rs.count.Add(-1)
		rs.refused.Add(1)
		return false
	}
	return true
}

// Room returns the room called name, creating it if needed. A room is listed
// by All and counted by Len while it has subscribers (or its first ones are
// waiting for the broker, see Room.Subscribe), and removed from the
// registry when the last one leaves; a *Room kept across that stays valid:
// publishing through it reaches whoever is in the room of that name, and
// subscribing through it brings the room back.
func (rs *Rooms[M]) Room(name string) *Room[M] {
	if r, ok := rs.live.Load(name); ok {
		return r.(*Room[M])
	}
	return &Room[M]{rooms: rs, name: name}
}

// All yields every room that has subscribers (or first ones waiting for
// the broker), with its name.
func (rs *Rooms[M]) All() iter.Seq2[string, *Room[M]] {
	return func(yield func(string, *Room[M]) bool) {
		rs.live.Range(func(k, v any) bool { return yield(k.(string), v.(*Room[M])) })
	}
}

// Len returns the number of rooms that have subscribers (or first ones
// waiting for the broker).
func (rs *Rooms[M]) Len() int { return int(rs.count.Load()) }

// Room is a named set of subscribers. Publish hands each message to all of
// them; it encodes the message once and gives every connection the same
// frame.
//
// The subscriber set is a snapshot behind an atomic pointer: Publish reads
// it without a lock, Subscribe and leaving replace it, at a cost that does
// not grow with the room (see members). The guarantees:
//   - once Subscribe (or Join) returns, every later Publish to the room, by
//     any goroutine through any *Room of that name, reaches the subscriber,
//     even while the room is being removed as empty at the same moment;
//   - messages published from one goroutine reach each subscriber in order;
//   - Join's message reaches the joiner before any other message of the
//     room.
type Room[M any] struct {
	rooms *Rooms[M]
	name  string

	set atomic.Pointer[members[M]]

	mu           sync.Mutex // serialises changes of the set; guards the fields below
	cancelBroker func()
	brokerReady  []<-chan struct{} // until in effect: closed once the broker subscriptions are (see Broker); nil after
	readyBy      time.Time         // when waiting for brokerReady ends, for every waiter alike
	joining      int               // subscribers waiting for brokerReady: the room stays in the registry, empty if need be
	hist         *history          // with a HistoryBroker: what this process has received of the room's history
}

// subscriber is a connection or, for in-process consumers, a func.
type subscriber[M any] struct {
	member *Conn[M]
	fn     func(M)
	slot   int // its index in the room's slots (see members), guarded by the room's lock

	// With a HistoryBroker, guarded by the room's history lock: a joiner
	// waiting for its own announcement's position holds what arrives
	// meanwhile; a recovered one skips what it was replayed.
	awaiting    atomic.Bool // read without the lock by ephemeral deliveries, which skip it
	held        []entry
	skipThrough Position
	then        []byte   // its ThenSend frame, sent right after its announcement at thenAt; nil: none pending
	thenAt      Position // (see deliverAfterOwn)
}

// Name returns the room's name.
func (r *Room[M]) Name() string { return r.name }

// Len returns the number of subscribers, connections and funcs.
func (r *Room[M]) Len() int {
	if set := r.current(); set != nil {
		return set.live
	}
	return 0
}

// Members yields the connections subscribed to the room (its presence):
// those in it when the range starts; one that leaves while the range runs
// may be left out.
func (r *Room[M]) Members() iter.Seq[*Conn[M]] {
	return func(yield func(*Conn[M]) bool) {
		set := r.current()
		if set == nil {
			return
		}
		for s := range set.all() {
			if s.member != nil && !yield(s.member) {
				return
			}
		}
	}
}

// Publish sends m to every subscriber of the room and, with a broker, to
// the room's members in other processes. A connection whose send queue is
// full is handled by its endpoint's overflow policy; Publish never waits for
// a connection's socket. With a broker it waits for the broker's Publish,
// which adapters bound with a timeout (and fail at once while they know
// they are disconnected). Func subscribers run in the calling goroutine.
//
// In a registry with history (WithHistory), m is recorded: it gets the
// room's next position, which its frame carries as "seq" and "epoch" in
// front of m's own fields (m must encode as a JSON object), every member
// receives the room's recorded messages in the order of their positions,
// and a member that reconnects is given what it missed (see Join).
//
// The error is nil, or one of:
//   - an error wrapping ErrBroker (and the broker's own error): every local
//     subscriber has m, members in other processes may not. The connection
//     is fine: tell the sender, do not end the handler;
//   - an encoding error ("wsroom: encode: ..."), for an m that cannot be
//     encoded as JSON: nobody has it.
func (r *Room[M]) Publish(m M) error {
	if r.rooms.history != nil {
		recorded := m // escapes on this path only: the ephemeral one allocates no copy of m
		return r.publishRecorded(&recorded)
	}
	return r.PublishEphemeral(m)
}

// PublishEphemeral publishes m as Publish does, but never records it, even
// in a registry with history: it carries no position and is never
// replayed (typing indicators, cursors). In a registry without history it
// is Publish. Ephemeral and recorded messages of one room are not ordered
// with each other.
func (r *Room[M]) PublishEphemeral(m M) error {
	set, b := r.current(), r.rooms.broker
	if b == nil && set == nil {
		return nil
	}
	var frame []byte
	if b != nil || set.conns > 0 {
		var err error
		if frame, err = encodeFrame(&m); err != nil {
			return fmt.Errorf("wsroom: encode: %w", err)
		}
	}
	if set != nil {
		set.deliver(m, frame)
	}
	return r.rooms.toBroker(r.name, frame)
}

// toBroker hands a published frame's payload to the broker, if any.
func (rs *Rooms[M]) toBroker(room string, frame []byte) error {
	if rs.broker == nil {
		return nil
	}
	if err := rs.broker.Publish(room, framePayload(frame)); err != nil {
		rs.brokerErrors.Add(1)
		return fmt.Errorf("%w: room %q: %w", ErrBroker, room, err)
	}
	return nil
}

// Subscribe adds c to the room: c receives every message published from now
// on, in this process and, with a broker that is connected, in every other.
// With a broker, the first members of a room become members only once the
// broker has confirmed the room's subscription, for at most
// BrokerReadyTimeout (while the broker is down it does not wait, and c
// receives other processes' messages once the broker is back). It
// returns a func that removes c (safe to call more than once); c also
// leaves when its handler returns. The error is ErrTooManyRooms when the
// room does not exist and the registry is at its cap (WithMaxRooms); a
// broker never makes Subscribe fail.
func (r *Room[M]) Subscribe(c *Conn[M]) (unsubscribe func(), err error) {
	if r.rooms.history != nil {
		return r.enterRecorded(c, nil, nil)
	}
	return r.subscribe(&subscriber[M]{member: c}, nil)
}

// Join subscribes c and publishes m as one step: c receives m before any
// other message of the room, even while others publish, and every other
// subscriber (and, with a broker, every other process) receives m too. Two
// steps, Subscribe then Publish, would let a concurrent message reach c
// first. It returns the func that removes c, as Subscribe does, and waits
// for the broker as Subscribe does: a joiner that receives its own
// announcement is subscribed on the broker (unless the broker is down, or
// did not confirm within BrokerReadyTimeout), so whatever is published
// from then on, in any process, reaches it.
//
// Options add presence: As makes c present in the room under a key (see
// Presence), LeaveWith gives the message published when c leaves.
//
// The error is ErrTooManyRooms (see Subscribe), an encoding error, an
// error of the options (ErrPresenceFull, ErrPresenceEntryTooLarge, a bad
// key, a leave message of another type), and c has then not joined. A
// broker never keeps c out: when it cannot take m, c is in the room all
// the same (leave removes it), and the failure is counted in
// RoomsStats.BrokerErrors. Without history, members in other processes
// miss the announcement and the error is nil. With a HistoryBroker, m has
// no position, so it reached nobody, c included, and the error wraps
// ErrNotRecorded: tell the member, and go on serving it.
func (r *Room[M]) Join(c *Conn[M], m M, opts ...JoinOption) (leave func(), err error) {
	p, err := r.prepareJoin(opts)
	if err != nil {
		return func() {}, err
	}
	leave, err = r.join(c, m, p)
	return p.finish(c, leave, err)
}

// join is Join once its options are checked.
func (r *Room[M]) join(c *Conn[M], m M, p *presenceJoin[M]) (leave func(), err error) {
	if r.rooms.history != nil {
		return r.enterRecorded(c, &m, p)
	}
	frame, err := encodeFrame(&m)
	if err != nil {
		return func() {}, fmt.Errorf("wsroom: encode: %w", err)
	}
	var old *members[M]
	leave, err = r.subscribe(&subscriber[M]{member: c}, func(_ *Room[M], set *members[M]) func() {
		// Present first: enter may wait for the broker, and a joiner that
		// has its own announcement must not miss what others publish
		// meanwhile, which it would until it is visible.
		p.enter()
		_ = c.conn.enqueue(frame) // before c is visible to any publisher
		p.sendThen(c)
		old = set
		return nil
	})
	if err != nil {
		return leave, err
	}
	old.deliver(m, frame)
	_ = r.rooms.toBroker(r.name, frame) // counted; see the doc comment
	return leave, nil
}

// SubscribeFunc adds an in-process consumer: fn is called with every message
// published from now on, in the publisher's goroutine (or the broker's), so
// it must not block. In a registry with history, fn receives recorded
// messages under the room's history lock, which keeps the room's one
// order: it must not publish to the same room itself (that waits for the
// lock it runs under); hand that to another goroutine. It waits for the
// broker and returns a func that removes fn, or ErrTooManyRooms, as
// Subscribe does.
func (r *Room[M]) SubscribeFunc(fn func(M)) (unsubscribe func(), err error) {
	return r.subscribe(&subscriber[M]{fn: fn}, nil)
}

// current returns the snapshot of the room of this name that is in the
// registry: this one, or the one that replaced it after it was removed.
func (r *Room[M]) current() *members[M] {
	if set := r.set.Load(); set != nil {
		return set
	}
	if x, ok := r.rooms.live.Load(r.name); ok {
		return x.(*Room[M]).set.Load()
	}
	return nil
}

func (r *Room[M]) subscribe(s *subscriber[M], before func(room *Room[M], old *members[M]) (after func())) (func(), error) {
	room := r.add(s, before)
	if room == nil {
		return func() {}, ErrTooManyRooms
	}
	var once sync.Once
	leave := func() { once.Do(func() { room.remove(s) }) }
	if s.member == nil {
		return leave, nil
	}
	m := &membership{leave: leave}
	if !s.member.conn.join(m) {
		leave() // the handler has ended: its connection is closing
		return leave, nil
	}
	return func() {
		s.member.conn.forget(m)
		leave()
	}, nil
}

// allClosed reports whether every ready is closed; a nil one counts as
// closed.
func allClosed(readies []<-chan struct{}) bool {
	for _, ready := range readies {
		if ready == nil {
			continue
		}
		select {
		case <-ready:
		default:
			return false
		}
	}
	return true
}

// awaitBroker waits for a room's broker subscriptions to be in effect,
// until readyBy at the latest: BrokerReadyTimeout after the room
// subscribed, so that a member who arrives late does not wait longer than
// the first.
func awaitBroker(readies []<-chan struct{}, readyBy time.Time) {
	t := time.NewTimer(time.Until(readyBy))
	defer t.Stop()
	for _, ready := range readies {
		if ready == nil {
			continue
		}
		select {
		case <-ready:
		case <-t.C:
			return
		}
	}
}

// add inserts s into the live room of r's name, making r that room if there
// is none, and returns the room it joined, or nil when a new room would
// exceed the registry's cap. With a broker, s becomes visible only once the
// room's broker subscription is in effect (or BrokerReadyTimeout passed).
// before runs under the room's lock just before s becomes visible to
// publishers, with the previous snapshot; the func it returns, if any,
// runs once s is visible and the room's lock released.
func (r *Room[M]) add(s *subscriber[M], before func(room *Room[M], old *members[M]) (after func())) *Room[M] {
	room := r
	for {
		room.mu.Lock()
		set := room.set.Load()
		if set == nil {
			// Not in the registry: become the live room, or join the one
			// that is.
			if x, loaded := room.rooms.live.LoadOrStore(room.name, room); loaded {
				room.mu.Unlock()
				room = x.(*Room[M])
				continue
			}
			if !room.rooms.reserve() {
				// Over the cap: take it back. A subscriber that found it
				// meanwhile waits on room.mu, then finds it empty.
				room.rooms.live.CompareAndDelete(room.name, room)
				room.mu.Unlock()
				return nil
			}
			set = &members[M]{}
			room.set.Store(set) // in the registry, empty while s waits below
			if room.rooms.broker != nil {
				room.subscribeBroker()
			}
		}
		if ready := room.brokerReady; ready != nil {
			if !allClosed(ready) {
				// s becomes visible to publishers (and a joiner gets its
				// announcement) only once the broker's subscription is in
				// effect; the room stays in the registry meanwhile, and
				// its subscription cannot change while anyone waits.
				room.joining++
				readyBy := room.readyBy
				room.mu.Unlock()
				awaitBroker(ready, readyBy)
				room.mu.Lock()
				room.joining--
				set = room.set.Load()
			}
			room.brokerReady = nil // in effect, or given up on: nobody waits again
		}
		var after func()
		if before != nil {
			after = before(room, set)
		}
		room.set.Store(set.with(s))
		room.mu.Unlock()
		if after != nil {
			after()
		}
		return room
	}
}

// remove takes s out of the room, and the room out of the registry when s
// was the last subscriber.
func (r *Room[M]) remove(s *subscriber[M]) {
	r.mu.Lock()
	defer r.mu.Unlock()
	next := r.set.Load().without(s)
	if next.live > 0 || r.joining > 0 {
		r.set.Store(next)
		return
	}
	r.set.Store(nil)
	r.rooms.live.CompareAndDelete(r.name, r)
	r.rooms.count.Add(-1)
	if r.cancelBroker != nil {
		r.cancelBroker()
		r.cancelBroker, r.brokerReady = nil, nil
	}
	if r.hist != nil {
		r.rooms.history.forget(r.name, r.hist) // unsubscribed: what it holds can no longer be vouched for
		r.hist = nil
	}
}

// subscribeBroker subscribes a room that has just become live to the
// broker: to what other processes publish and, with a HistoryBroker, to
// the room's recorded messages. r.mu is held.
func (r *Room[M]) subscribeBroker() {
	b, hb := r.rooms.broker, r.rooms.historyBroker
	r.readyBy = time.Now().Add(BrokerReadyTimeout)
	cancel, ready := b.Subscribe(r.name, r.deliverRemote)
	if hb == nil {
		r.cancelBroker, r.brokerReady = cancel, []<-chan struct{}{ready}
		return
	}
	h := r.rooms.history.create(r.name)
	r.hist = h
	cancelRecorded, recordedReady := hb.SubscribeRecorded(r.name, func(pos Position, payload []byte) {
		r.deliverRecorded(h, pos, payload)
	})
	r.cancelBroker = func() { cancel(); cancelRecorded() }
	r.brokerReady = []<-chan struct{}{ready, recordedReady}
}

// deliverRemote hands local subscribers a message another process
// published. The bytes come from outside the process: what is not valid
// UTF-8 JSON (which browsers would fail the connection on), or not an M
// when funcs need one, is counted and dropped.
func (r *Room[M]) deliverRemote(payload []byte) {
	set := r.set.Load()
	if set == nil {
		return
	}
	var m M
	valid := utf8.Valid(payload)
	if valid && set.live > set.conns {
		valid = json.Unmarshal(payload, &m) == nil // which checks all of payload first
	} else if valid {
		valid = json.Valid(payload)
	}
	if !valid {
		r.rooms.remoteInvalid.Add(1)
		return
	}
	var frame []byte
	if set.conns > 0 {
		frame = newFrame(opText, payload)
	}
	// Counted first, like every counter here: whoever sees the message
	// finds it counted.
	r.rooms.remoteDelivered.Add(1)
	set.deliver(m, frame)
}
