package wsroom

// Pings and pongs between messages are read here rather than by gws. gws's
// reader goes on to the next frame after a control frame, so a connection
// that only exchanges heartbeats would wait for its next frame deep inside
// gws, on a stack grown to 4 KiB for good. At a message boundary (where
// awaitInput runs, and only there) the bytes gws has buffered and those
// pending in socketInput start with a frame header, so complete, valid
// pings and pongs at their head can be answered and dropped before gws
// sees them. Anything else, a malformed control frame included, is left
// to gws, which answers it as it always does.

// frameNext says what comes next in what was read.
type frameNext int

const (
	frameUnread   frameNext = iota // nothing, or not yet a whole ping or pong
	frameAnswered                  // a ping or pong, answered and dropped
	frameForGws                    // the start of another frame: gws reads it
)

// readPingPong answers the ping or pong at the head of what was read, if
// a whole one is there. c.readMu must be held.
func (c *conn) readPingPong() frameNext {
	buffered, _ := c.br.Peek(c.br.Buffered())
	pending := c.in.pending()
	var first byte
	switch {
	case len(buffered) > 0:
		first = buffered[0]
	case len(pending) > 0:
		first = pending[0]
	default:
		return frameUnread
	}
	// A message's frame, the common case, is told by its first byte,
	// before anything is copied.
	if op := first & 0x0F; op != opPing && op != opPong {
		return frameForGws
	}
	var head [2 + 4 + maxControlPayload]byte // a masked control frame, whole
	n := copy(head[:], buffered)
	n += copy(head[n:], pending)
	if n < 2 {
		return frameUnread
	}
	// Final, no reserved bits, masked, at most 125 bytes: otherwise gws's
	// to refuse.
	if head[0]&0xF0 != 0x80 || head[1]&0x80 == 0 || int(head[1]&0x7F) > maxControlPayload {
		return frameForGws
	}
	size := 6 + int(head[1]&0x7F)
	if n < size {
		return frameUnread
	}
	payload := head[6:size]
	for i := range payload {
		payload[i] ^= head[2+i%4]
	}
	fromBufio := min(size, len(buffered))
	_, _ = c.br.Discard(fromBufio) // buffered: no read
	c.in.skip(size - fromBufio)
	if head[0]&0x0F == opPing {
		c.answerPing(payload)
	} else {
		c.touch()
	}
	return frameAnswered
}
