package wsroom

import "fmt"

// ThenSend makes Join send the joiner alone fn's message right after its
// own announcement, as part of the same step: no other message of the
// room, recorded or ephemeral, reaches the joiner between the two. A
// reconnection that recovers is replayed what it missed first, then its
// announcement, then fn's message. fn runs once the joiner is present
// (As), so a Presence it reads lists the joiner: the joiner can be told
// who is here, and learn every later change from the joins and leaves
// that follow.
//
// fn runs inside the join: without a HistoryBroker under the room's locks,
// which hold up other joins and leaves of the room (and, with history, its
// recorded publishes) until it returns. It must be quick (bound a broker
// read with a context) and must not publish to, join or leave the room.
// When the announcement cannot be recorded (ErrNotRecorded), fn's message
// is still sent, first of the room's messages. A message that cannot be
// encoded as JSON is not sent. fn must return the room's message type, or
// Join fails.
func ThenSend[M any](fn func() M) JoinOption {
	return func(jc *joinConfig) { jc.then = fn }
}

// thenOf returns the join's ThenSend func, nil without one.
func thenOf[M any](jc *joinConfig) (func() M, error) {
	if jc.then == nil {
		return nil, nil
	}
	fn, ok := jc.then.(func() M)
	if !ok {
		return nil, fmt.Errorf("wsroom: ThenSend(%T): the room's messages are of type %T", jc.then, *new(M))
	}
	return fn, nil
}

// thenFrame runs the join's ThenSend func and frames its message; nil
// without one, or when the message cannot be encoded.
func (p *presenceJoin[M]) thenFrame() []byte {
	if p == nil || p.then == nil {
		return nil
	}
	m := p.then()
	frame, err := encodeFrame(&m)
	if err != nil {
		return nil
	}
	return frame
}

// sendThen queues the join's ThenSend message for c.
func (p *presenceJoin[M]) sendThen(c *Conn[M]) {
	if frame := p.thenFrame(); frame != nil {
		_ = c.conn.enqueue(frame)
	}
}

// deliverAfterOwn hands s, which waits for its own announcement (at
// s.thenAt) to send its ThenSend frame right after it, a recorded message
// that came back from the HistoryBroker. Older messages go as usual; the
// announcement goes with the frame; should a later one come first (the
// announcement lost on its way), the frame goes before it. The room's
// history lock is held.
func (s *subscriber[M]) deliverAfterOwn(pos Position, frame []byte) {
	if pos.Epoch == s.thenAt.Epoch && pos.Offset < s.thenAt.Offset {
		_ = s.member.conn.enqueue(frame)
		return
	}
	if pos == s.thenAt {
		_ = s.member.conn.enqueue(frame)
		_ = s.member.conn.enqueue(s.then)
	} else {
		_ = s.member.conn.enqueue(s.then)
		_ = s.member.conn.enqueue(frame)
	}
	s.then = nil
	s.awaiting.Store(false) // ephemeral messages reach it again
}

// wantsThen reports whether the join sends a ThenSend message.
func (p *presenceJoin[M]) wantsThen() bool { return p != nil && p.then != nil }
