package wsroom

import (
	"fmt"
	"reflect"
	"strings"
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
	hs := r.rooms.history
	e, obj, err := encodeObject(m)
	if err != nil {
		e.release()
		return err
	}
	h := hs.lock(r.name)
	frame := recordedFrame(obj, h.last+1, h.epoch)
	hs.append(h, frame)
	r.rooms.recorded.Add(1)
	if set := r.current(); set != nil {
		set.deliver(*m, frame)
	}
	h.mu.Unlock()
	e.release()
	hs.tidy(r.rooms.isLive)
	return nil
}

// enterRecorded subscribes c to a room with history and, if m is not nil,
// records m as its announcement (Join). A connection that asked to recover
// (QuerySince) is first sent the recovery notice and what it missed; then
// its announcement; then, with no gap, every later recorded message.
func (r *Room[M]) enterRecorded(c *Conn[M], m *M) (leave func(), err error) {
	hs := r.rooms.history
	var obj []byte
	if m != nil {
		var e *encoder
		e, obj, err = encodeObject(m)
		defer e.release()
		if err != nil {
			return func() {}, err
		}
	}
	leave, err = r.subscribe(&subscriber[M]{member: c}, func(old *members[M]) func() {
		h := hs.lock(r.name) // held until the announcement has reached everyone
		if pos := c.conn.resume; pos != nil {
			r.replay(c, h, *pos)
		}
		if m == nil {
			return h.mu.Unlock
		}
		frame := recordedFrame(obj, h.last+1, h.epoch)
		hs.append(h, frame)
		r.rooms.recorded.Add(1)
		_ = c.conn.enqueue(frame) // before c is visible to any publisher
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
	missed, ok := r.rooms.history.since(h, pos)
	if !ok {
		r.rooms.notRecovered.Add(1)
		_ = c.conn.enqueue(noticeFrame(false, h.epoch, 0))
		return
	}
	r.rooms.recovered.Add(1)
	_ = c.conn.enqueue(noticeFrame(true, h.epoch, len(missed)))
	for _, x := range missed {
		_ = c.conn.enqueue(x.frame)
	}
}

// isLive reports whether the room called name has members.
func (rs *Rooms[M]) isLive(name string) bool {
	_, ok := rs.live.Load(name)
	return ok
}

// checkRecordable reports why messages of type M cannot be recorded in
// the registry configured by cfg: a broker that keeps no history would
// give each process its own positions for one room, and a field of M's
// that always encodes as "seq" or "epoch" would clash with the position.
func checkRecordable[M any](cfg roomsConfig) error {
	if cfg.broker != nil {
		return fmt.Errorf("wsroom: WithHistory with WithBroker: the broker keeps no history, so each process would number the room's messages its own way")
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
