package wsroom

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
)

// presenceJoin is what a Join with options adds to the join: the member's
// presence entry, if it joins As a key, and its leave message, if it has
// one. A nil *presenceJoin adds nothing.
type presenceJoin[M any] struct {
	room  *Room[M]
	leave *M              // published when the member leaves; nil: none
	rec   *PresenceRecord // nil: not present
	rp    *roomPresence
	then  func() M // ThenSend; nil: none
	once  sync.Once
}

// prepareJoin checks a Join's options and reserves the member's presence
// entry. It returns nil without options.
func (r *Room[M]) prepareJoin(opts []JoinOption) (*presenceJoin[M], error) {
	if len(opts) == 0 {
		return nil, nil
	}
	var jc joinConfig
	for _, o := range opts {
		o(&jc)
	}
	p := &presenceJoin[M]{room: r}
	var err error
	if p.then, err = thenOf[M](&jc); err != nil {
		return nil, err
	}
	var leaveJSON []byte
	if jc.hasLeave {
		m, ok := jc.leave.(M)
		if !ok {
			return nil, fmt.Errorf("wsroom: LeaveWith(%T): the room's messages are of type %T", jc.leave, m)
		}
		p.leave = &m
		if leaveJSON, err = json.Marshal(&m); err != nil {
			return nil, fmt.Errorf("wsroom: LeaveWith: encode: %w", err)
		}
	}
	if !jc.keyed {
		return p, nil
	}
	ps := r.rooms.presence
	rec, err := ps.newRecord(jc.key, jc.meta, leaveJSON)
	if err != nil {
		return nil, err
	}
	if p.rp, err = ps.reserve(r.name, rec); err != nil {
		return nil, err
	}
	p.rec = rec
	return p, nil
}

// enter makes the member present, here and at the broker; Join calls it
// just before the member's announcement reaches anyone but the member.
func (p *presenceJoin[M]) enter() {
	if p == nil || p.rec == nil {
		return
	}
	ps := p.room.rooms.presence
	ps.show(p.rp, p.rec)
	ps.put(p.room.name, p.rp, p.rec)
}

// finish completes a Join that returned leave and err: a failed join
// gives its reservation back; a joined member leaves its presence, and
// announces its leave, after leave, whether its handler returns or it
// calls the func returned.
func (p *presenceJoin[M]) finish(c *Conn[M], leave func(), err error) (func(), error) {
	if p == nil {
		return leave, err
	}
	if err != nil && !errors.Is(err, ErrNotRecorded) {
		if p.rec != nil {
			p.room.rooms.presence.release(p.room.name, p.rp, p.rec)
		}
		return leave, err
	}
	// Joined (err, if any, says the announcement was not recorded).
	m := &membership{leave: p.depart}
	if !c.conn.join(m) {
		// The handler has ended meanwhile: the member left the room at
		// once, and now leaves its presence.
		p.depart()
		return leave, err
	}
	return func() {
		c.conn.forget(m)
		leave()
		p.depart()
	}, err
}

// depart takes the member out of the room's presence, here and at the
// broker, then publishes its leave message; once.
func (p *presenceJoin[M]) depart() {
	p.once.Do(func() {
		if p.rec != nil {
			ps := p.room.rooms.presence
			if ps.release(p.room.name, p.rp, p.rec) {
				ps.drop(p.room.name, p.rp, p.rec)
			}
		}
		if p.leave != nil {
			_ = p.room.Publish(*p.leave) // a broker error is counted, as for any publish
		}
	})
}
