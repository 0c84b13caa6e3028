package wsroom

import (
	"errors"
	"fmt"
	"iter"
	"net"

	"github.com/lxzan/gws"
)

// messages returns the stream of c's inbound messages. Ranging over it reads
// the socket in the ranging goroutine: there is no goroutine or channel per
// message. The stream can be ranged over once.
func messages[In any](c *conn, s *schemas) iter.Seq2[In, error] {
	return func(yield func(In, error) bool) {
		if !c.ranging.CompareAndSwap(false, true) {
			return
		}
		for {
			// Messages gws has already buffered are not delivered once
			// the connection is closing.
			var msg *gws.Message
			err := net.ErrClosed
			if !c.closing.Load() {
				msg, err = c.ws.ReadMessage()
			}
			if err != nil {
				if end := c.streamEnd(err); end != nil {
					var zero In
					yield(zero, end)
				}
				return
			}
			c.stats.messagesIn.Add(1)
			c.stats.bytesIn.Add(int64(msg.Data.Len()))
			if wait := c.received(); wait > 0 && !c.overLimit(wait) {
				_ = msg.Close()
				continue // the connection is closing: the next read ends the stream
			}
			var v In
			var bad *InvalidMessageError
			if msg.Opcode != gws.OpcodeText {
				bad = errBinary()
			} else {
				bad = s.decode(msg.Bytes(), &v)
			}
			_ = msg.Close()
			if bad == nil {
				if !yield(v, nil) {
					return // the handler's return closes the connection
				}
			} else if !c.invalid(bad, func() bool { return yield(v, bad) }) {
				return
			}
		}
	}
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

func (events) OnPing(s *gws.Conn, payload []byte) {
	c := connOf(s)
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
