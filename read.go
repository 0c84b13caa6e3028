package wsroom

import (
	"bytes"
	"errors"
	"fmt"
	"iter"
	"net"

	"github.com/lxzan/gws"
)

// messages returns the stream of c's inbound messages. Ranging over it reads
// the socket in the ranging goroutine: there is no goroutine or channel per
// message. The stream can be ranged over once.
//
// An idle connection's goroutine is parked in this iterator for most of
// its life, and the GC never shrinks a goroutine's stack below four times
// what it uses while parked. So the frames under the wait are kept few and
// small: the iterator, nextMessage and awaitInput hold only what they
// need, and decoding, with its larger frames, happens in deliver, once a
// message has arrived.
func messages[In any](c *conn, s *schemas) iter.Seq2[In, error] {
	return func(yield func(In, error) bool) {
		if !c.ranging.CompareAndSwap(false, true) {
			return
		}
		for {
			msg, end := c.nextMessage()
			if msg == nil {
				if end != nil {
					yieldEnd(yield, end)
				}
				return
			}
			if !deliver(c, s, msg, yield) {
				return
			}
		}
	}
}

// nextMessage returns the next message for the handler, or nil and how
// the stream ends (nil for a clean end).
func (c *conn) nextMessage() (*gws.Message, error) {
	for {
		c.awaitInput()
		// Messages gws has already buffered are not delivered once the
		// connection is closing.
		var msg *gws.Message
		err := net.ErrClosed
		if !c.closing.Load() {
			msg, err = c.ws.ReadMessage()
		}
		if err != nil {
			return nil, c.streamEnd(err)
		}
		c.stats.messagesIn.Add(1)
		c.stats.bytesIn.Add(int64(msg.Data.Len()))
		if wait := c.received(); wait > 0 && !c.overLimit(wait) {
			_ = msg.Close()
			continue // the connection is closing: the next read ends the stream
		}
		return msg, nil
	}
}

// awaitInput waits until the socket has something for gws's reader: the
// start of a message, or an error. It waits holding no read buffer (see
// socketInput), in fewer frames than a wait inside gws's reader would, and
// answers the pings and pongs that come first itself (pingpong.go): gws,
// which reads on after a control frame, would wait for the next frame
// deep inside its reader.
func (c *conn) awaitInput() {
	c.inflateOp = 0
	if !c.in.direct() {
		if c.deflate {
			c.peekInput()
		}
		return
	}
	c.readMu.Lock()
	defer c.readMu.Unlock()
	for !c.closing.Load() {
		switch c.readPingPong() {
		case frameAnswered:
			continue
		case frameForGws:
			c.markCompressed(c.firstBuffered())
			return
		}
		if c.in.err != nil {
			return // for gws to read
		}
		c.in.fill()
	}
}

// peekInput is awaitInput on a socket read through net.Conn by a
// connection that negotiated compression: it reads through gws's buffer
// until the start of the next message is there to be marked
// (compress_read.go), answering the pings and pongs that come first.
func (c *conn) peekInput() {
	for !c.closing.Load() {
		c.readMu.Lock()
		next := c.readPingPong()
		if next == frameForGws {
			c.markCompressed(c.firstBuffered())
		}
		c.readMu.Unlock()
		switch next {
		case frameAnswered:
			continue
		case frameForGws:
			return
		}
		if _, err := c.br.Peek(c.br.Buffered() + 1); err != nil {
			return // for gws to read
		}
	}
}

// deliver decodes msg and hands it, or its rejection, to the handler. It
// reports whether the stream goes on. It is never inlined: its frame holds
// an In, which must not sit under the wait in messages.
//
//go:noinline
func deliver[In any](c *conn, s *schemas, msg *gws.Message, yield func(In, error) bool) bool {
	var v In
	var bad *InvalidMessageError
	op, data := byte(msg.Opcode), msg.Bytes()
	var inflated *bytes.Buffer
	if c.inflateOp != 0 {
		op = c.inflateOp
		if inflated = c.inflated(data, op); inflated == nil {
			_ = msg.Close()
			return true // the connection is closing: the next read ends the stream
		}
		data = inflated.Bytes()
	}
	if op != opText {
		bad = errBinary()
	} else {
		bad = s.decode(data, &v)
	}
	_ = msg.Close()
	if inflated != nil {
		releaseInflated(inflated)
	}
	if bad == nil {
		return yield(v, nil) // false: the handler's return closes the connection
	}
	return c.invalid(bad, func() bool { return yield(v, bad) })
}

// yieldEnd hands the handler the error that ends the stream. It is never
// inlined, for the reason deliver is not.
//
//go:noinline
func yieldEnd[In any](yield func(In, error) bool, end error) {
	var zero In
	yield(zero, end)
}

// invalid applies the endpoint's InvalidPolicy to a rejected message;
// yieldBad hands it to the handler. It reports whether the stream goes on.
func (c *conn) invalid(bad *InvalidMessageError, yieldBad func() bool) bool {
	c.stats.rejected.Add(1)
	switch c.cfg.invalid {
	case InvalidClose:
		c.closeInvalid(bad.Reason) // the next read ends the stream
	case InvalidYield:
		return yieldBad()
	default:
		c.reject(bad)
	}
	return true
}

// reject answers an invalid message with the endpoint's error reply.
func (c *conn) reject(bad *InvalidMessageError) {
	frame, err := encodeFrame(c.cfg.errorReply(bad))
	if err != nil {
		c.cfg.logger.Error("wsroom: encode error reply", "error", err)
		return
	}
	_ = c.enqueue(frame)
}

// streamEnd works out, once a read failed, how the stream ends: nil for a
// close the handler asked for or a clean close by the peer, an error
// otherwise. It finishes the connection when the close did not start here.
func (c *conn) streamEnd(readErr error) error {
	c.mu.Lock()
	cause, by := c.cause, c.closedBy
	c.mu.Unlock()
	c.wmu.Lock()
	gc := c.gwsClose
	c.wmu.Unlock()
	if cause != nil {
		if gc != nil {
			// gws answered a close of the peer's while ours was starting:
			// our close frame cannot follow, so nothing is left to write.
			c.finish(nil)
		}
		if by == closedByHandler {
			return nil
		}
		return cause
	}
	if pc := c.peerClose; pc != nil {
		ce := &CloseError{Code: StatusCode(pc.Code), Reason: string(pc.Reason)}
		if ce.Code == 0 {
			ce.Code = StatusNoStatus
		}
		c.finish(ce)
		switch ce.Code {
		case StatusNormalClosure, StatusGoingAway, StatusNoStatus:
			return nil
		}
		return ce
	}
	if gc != nil && gc.Code != StatusNormalClosure {
		// A protocol violation: gws closed with 1002, 1007 or 1009. (On a
		// failed read it closes with 1000 and the error text; that is a
		// lost connection, below.)
		c.finish(gc)
		return gc
	}
	err := fmt.Errorf("wsroom: connection lost: %w", readErr)
	c.finish(&CloseError{Code: StatusGoingAway, Reason: "connection lost"})
	return err
}

// events receives gws's callbacks. Data messages are read by the stream
// itself (gws's ReadMessage), so only control frames arrive here.
type events struct{ gws.BuiltinEventHandler }

func connOf(s *gws.Conn) *conn { return s.NetConn().(*wire).c }

func (events) OnPing(s *gws.Conn, payload []byte) { connOf(s).answerPing(payload) }

// answerPing answers a ping of the peer's.
func (c *conn) answerPing(payload []byte) {
	c.touch()
	_ = c.enqueue(newFrame(opPong, payload))
}

func (events) OnPong(s *gws.Conn, _ []byte) { connOf(s).touch() }

func (events) OnClose(s *gws.Conn, err error) {
	var ce *gws.CloseError
	if errors.As(err, &ce) {
		connOf(s).peerClose = ce
	}
}
