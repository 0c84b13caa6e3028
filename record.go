package wsroom

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"unicode/utf8"
)

// The recorded path: rooms of a registry with history. Each recorded
// publish takes the room's history lock, which gives the message its
// offset, records its frame and hands it to the members in one step, so
// that every member receives the room's recorded messages in offset order.
// A member enters (Subscribe, Join) under the same lock: what it is
// replayed and what it then receives live meet with no gap and nothing
// twice.

// publishRecorded records m and delivers it to the room's members.
func (r *Room[M]) publishRecorded(m *M) error {
	e, obj, err := encodeObject(m)
	defer e.release()
	if err != nil {
		return err
	}
	if hb := r.rooms.historyBroker; hb != nil {
		// The broker gives the position and hands the message back, to
		// this process's members too, in the room's one order.
		if _, err := hb.Record(r.name, obj); err != nil {
			r.rooms.brokerErrors.Add(1)
			return fmt.Errorf("%w: room %q: %w", ErrNotRecorded, r.name, err)
		}
		r.rooms.recorded.Add(1)
		return nil
	}
	hs := r.rooms.history
	h := hs.lock(r.name)
	frame := hs.record(h, obj)
	r.rooms.recorded.Add(1)
	if set := r.current(); set != nil {
		set.deliver(*m, frame)
	}
	h.mu.Unlock()
	hs.tidy(r.rooms.isLive)
	return nil
}

// enterRecorded subscribes c to a room with history and, if m is not nil,
// records m as its announcement (Join). A connection that asked to recover
// (QuerySince) is first sent the recovery notice and what it missed; then
// its announcement; then, with no gap, every later recorded message.
func (r *Room[M]) enterRecorded(c *Conn[M], m *M, p *presenceJoin[M]) (leave func(), err error) {
	var obj []byte
	if m != nil {
		var e *encoder
		e, obj, err = encodeObject(m)
		defer e.release()
		if err != nil {
			return func() {}, err
		}
	}
	if r.rooms.historyBroker != nil {
		return r.enterThroughBroker(c, m, obj, p)
	}
	hs := r.rooms.history
	leave, err = r.subscribe(&subscriber[M]{member: c}, func(_ *Room[M], old *members[M]) func() {
		h := hs.lock(r.name) // held until the announcement has reached everyone
		if pos := c.conn.resume; pos != nil {
			r.replay(c, h, *pos)
		}
		if m == nil {
			return h.mu.Unlock
		}
		frame := hs.record(h, obj)
		r.rooms.recorded.Add(1)
		_ = c.conn.enqueue(frame) // before c is visible to any publisher
		p.enter()
		p.sendThen(c)
		return func() {
			old.deliver(*m, frame)
			h.mu.Unlock()
		}
	})
	if err == nil {
		hs.tidy(r.rooms.isLive)
	}
	return leave, err
}

// replay sends c the recovery notice for pos and, when the history covers
// it, the recorded messages after pos. h.mu is held.
func (r *Room[M]) replay(c *Conn[M], h *history, pos Position) {
	if !r.replayCached(c, h, pos) {
		r.notRecovered(c, h.epoch)
	}
}

// replayCached sends c the recovery notice and the messages after pos if
// h holds all of them, and reports whether it did. h.mu is held.
func (r *Room[M]) replayCached(c *Conn[M], h *history, pos Position) bool {
	missed, ok := r.rooms.history.since(h, pos)
	if ok {
		r.recovered(c, h.epoch, missed)
	}
	return ok
}

// recovered sends c the notice that it recovered, then what it missed.
func (r *Room[M]) recovered(c *Conn[M], epoch string, missed []entry) {
	r.rooms.recovered.Add(1)
	_ = c.conn.enqueue(noticeFrame(true, epoch, len(missed)))
	for _, x := range missed {
		_ = c.conn.enqueue(x.frame)
	}
}

// notRecovered tells c its position could not be recovered.
func (r *Room[M]) notRecovered(c *Conn[M], epoch string) {
	r.rooms.notRecovered.Add(1)
	_ = c.conn.enqueue(noticeFrame(false, epoch, 0))
}

// isLive reports whether the room called name has members.
func (rs *Rooms[M]) isLive(name string) bool {
	_, ok := rs.live.Load(name)
	return ok
}

// checkRecordable reports why messages of type M cannot be recorded in
// the registry configured by cfg: a broker that keeps no history (no
// HistoryBroker) would give each process its own positions for one room,
// and a field of M's that always encodes as "seq" or "epoch" would clash
// with the position.
func checkRecordable[M any](cfg roomsConfig) error {
	if _, ok := cfg.broker.(HistoryBroker); cfg.broker != nil && !ok {
		return fmt.Errorf("wsroom: WithHistory with WithBroker: %T keeps no history (it is no HistoryBroker), so each process would number a room's messages its own way", cfg.broker)
	}
	t := reflect.TypeFor[M]()
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" {
			name = f.Name
		}
		if (name == "seq" || name == "epoch") && f.IsExported() && !strings.Contains(opts, "omitempty") {
			return fmt.Errorf("wsroom: WithHistory: field %s of %v encodes as %q, which the position takes; make it omitempty and leave it zero", f.Name, t, name)
		}
	}
	return nil
}

// enterThroughBroker is enterRecorded with a HistoryBroker: the broker
// gives positions, and the room's messages reach this process through its
// recorded subscription. A joiner that asked to recover is replayed what
// it missed, from what this process holds or else from the broker, and
// then skips those messages should they arrive again; a fresh joiner's
// own announcement must come first, so what arrives before its position
// is known is held, then dropped if older.
func (r *Room[M]) enterThroughBroker(c *Conn[M], m *M, obj []byte, p *presenceJoin[M]) (leave func(), err error) {
	s := &subscriber[M]{member: c}
	fresh := c.conn.resume == nil
	var h *history
	leave, err = r.subscribe(s, func(room *Room[M], _ *members[M]) func() {
		h = room.hist
		h.mu.Lock()
		if pos := c.conn.resume; pos != nil {
			s.skipThrough = r.replayThroughBroker(c, h, *pos)
		}
		if m != nil && (fresh || p.wantsThen()) {
			s.awaiting.Store(true)
		}
		return h.mu.Unlock
	})
	if err != nil || m == nil {
		return leave, err
	}
	p.enter()
	pos, err := r.rooms.historyBroker.Record(r.name, obj)
	if err != nil {
		r.rooms.brokerErrors.Add(1) // the announcement reached nobody; the joiner is in all the same
	} else {
		r.rooms.recorded.Add(1)
	}
	then := p.thenFrame()
	if fresh || then != nil {
		h.mu.Lock()
		for _, x := range s.held {
			if err != nil || !fresh || x.offset >= pos.Offset {
				_ = c.conn.enqueue(x.frame)
			}
			if then != nil && err == nil && x.offset == pos.Offset {
				_ = c.conn.enqueue(then) // right after its announcement
				then = nil
			}
		}
		s.held = nil
		if err == nil && fresh {
			// What was recorded before the announcement may still be on
			// its way back from the broker: it is from before the join.
			s.skipThrough = Position{Offset: pos.Offset - 1, Epoch: pos.Epoch}
		}
		switch {
		case then != nil && err != nil:
			_ = c.conn.enqueue(then)
		case then != nil:
			// The announcement is still on its way back: it waits for it,
			// ephemeral messages passing it by (deliverAfterOwn).
			s.then, s.thenAt = then, pos
			h.mu.Unlock()
			return leave, nil
		}
		s.awaiting.Store(false)
		h.mu.Unlock()
	}
	if err != nil {
		return leave, fmt.Errorf("%w: room %q: the announcement: %w", ErrNotRecorded, r.name, err)
	}
	return leave, nil
}

// replayThroughBroker sends c the recovery notice for pos and what it
// missed, from h when h holds all of it, or else from the broker's
// history. It returns the position of the last message replayed: c skips
// it and older ones of its epoch should they arrive live. h.mu is held (and the room's
// lock: a broker's history is read, bounded by BrokerReadyTimeout, while
// the room's deliveries wait).
func (r *Room[M]) replayThroughBroker(c *Conn[M], h *history, pos Position) Position {
	if h.known && r.replayCached(c, h, pos) {
		return Position{Offset: h.last, Epoch: h.epoch}
	}
	ctx, cancel := context.WithTimeout(c.conn.ctx, BrokerReadyTimeout)
	defer cancel()
	msgs, epoch, complete, err := r.rooms.historyBroker.History(ctx, r.name, pos, r.rooms.history.size)
	if err != nil || !validEpoch(epoch) {
		r.rooms.brokerErrors.Add(1)
		r.notRecovered(c, h.epoch)
		return Position{}
	}
	if !complete {
		r.notRecovered(c, epoch)
		return Position{}
	}
	missed := make([]entry, 0, len(msgs))
	for _, x := range msgs {
		if !validRecorded(x.Payload) {
			r.rooms.remoteInvalid.Add(1)
			r.notRecovered(c, epoch)
			return Position{}
		}
		missed = append(missed, entry{offset: x.Position.Offset, frame: recordedFrame(x.Payload, x.Position.Offset, epoch)})
	}
	r.recovered(c, epoch, missed)
	if len(missed) == 0 {
		return pos
	}
	return Position{Offset: missed[len(missed)-1].offset, Epoch: epoch}
}

// deliverRecorded hands local members a recorded message that came back
// from the HistoryBroker, in the room's one order, and keeps it in h.
// The bytes come from outside the process: what is not a UTF-8 JSON
// object with a valid epoch is counted and dropped.
func (r *Room[M]) deliverRecorded(h *history, pos Position, payload []byte) {
	if !validRecorded(payload) || !validEpoch(pos.Epoch) || pos.Offset == 0 {
		r.rooms.remoteInvalid.Add(1)
		return
	}
	hs := r.rooms.history
	h.mu.Lock()
	r.deliverRecordedLocked(h, pos, payload)
	h.mu.Unlock()
	hs.tidy(r.rooms.isLive)
}

// deliverRecordedLocked is deliverRecorded under h.mu.
func (r *Room[M]) deliverRecordedLocked(h *history, pos Position, payload []byte) {
	hs := r.rooms.history
	switch {
	case h.dead:
		return
	case !h.known || pos.Epoch != h.epoch || pos.Offset > h.last+1:
		// The first message, a new epoch, or a gap this process cannot
		// vouch for: recoveries from before it ask the broker.
		hs.restart(h, pos)
	case pos.Offset <= h.last:
		return // delivered already
	}
	frame := recordedFrame(payload, pos.Offset, pos.Epoch)
	hs.put(h, pos.Offset, frame)
	set := r.set.Load()
	if set == nil {
		return
	}
	var m M
	if set.live > set.conns && json.Unmarshal(payload, &m) != nil {
		r.rooms.remoteInvalid.Add(1)
		return
	}
	r.rooms.remoteDelivered.Add(1)
	set.deliverRecorded(m, pos, frame)
}

// deliverRecorded hands a recorded message that came back from the
// HistoryBroker to every subscriber in the snapshot that is to have it: a
// joiner waiting for its announcement's position holds it, a recovered
// one skips what it was replayed. The room's history lock is held.
func (set *members[M]) deliverRecorded(m M, pos Position, frame []byte) {
	for s := range set.all() {
		switch {
		case s.member == nil:
			s.fn(m)
		case pos.Epoch == s.skipThrough.Epoch && pos.Offset <= s.skipThrough.Offset:
		case s.then != nil:
			s.deliverAfterOwn(pos, frame)
		case s.awaiting.Load():
			s.held = append(s.held, entry{offset: pos.Offset, frame: frame})
		default:
			_ = s.member.conn.enqueue(frame)
		}
	}
}

// validRecorded reports whether payload can be framed as a recorded
// message: a UTF-8 JSON object.
func validRecorded(payload []byte) bool {
	return len(payload) >= 2 && payload[0] == '{' && utf8.Valid(payload) && json.Valid(payload)
}

// validEpoch reports whether epoch may go into a frame unescaped.
func validEpoch(epoch string) bool {
	if len(epoch) == 0 || len(epoch) > 64 {
		return false
	}
	for _, b := range []byte(epoch) {
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-' || b == '_') {
			return false
		}
	}
	return true
}
