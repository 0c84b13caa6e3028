package wsroom

import (
	"iter"
	"net"
	"time"

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
				continue
			}
			c.stats.rejected.Add(1)
			switch c.cfg.invalid {
			case InvalidClose:
				c.closeWith(closedByServer, StatusInvalidPayload, bad.Reason, afterQueue, nil)
			case InvalidYield:
				if !yield(v, bad) {
					return
				}
			default:
				c.reject(bad)
			}
		}
	}
}

// overLimit applies the rate policy to a message that found the bucket
// empty. It reports whether the message is to be handled.
func (c *conn) overLimit(wait time.Duration) bool {
	if c.cfg.ratePolicy == RateClose {
		c.closeWith(closedByServer, StatusPolicyViolation, "rate limit exceeded", dropQueue, c.stats.countRateLimited)
		return false
	}
	return c.throttle(wait)
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
