package client

import (
	"context"
	"errors"
	"iter"

	"github.com/wsroom/wsroom"
)

// item is one thing the range is to see: a message or its error, a
// status, or the Conn's end.
type item[Recv any] struct {
	msg    Recv
	err    error
	pos    wsroom.Position // of a recorded message; zero otherwise
	status *Status
	final  bool // err ended the Conn
}

// Messages returns the stream of received messages, decoded from JSON
// into Recv, in the order they arrived, across reconnects: every recorded
// message once and in order (see the package doc), and what is not
// recorded as it arrives. A frame that cannot be made a Recv is yielded as
// an *InvalidMessageError, and the range may go on. When the Conn ends by
// itself, the last pair carries why: a *wsroom.CloseError (the server's
// close, final), an *UpgradeError (a refused reconnection), a
// *GaveUpError; when Dial's context is cancelled, its error. After Close
// the range ends without an error.
//
// Statuses are handed to the WithStatus callback between two pairs.
// Breaking out of the range leaves the Conn as it is: the next range goes
// on where this one stopped.
func (c *Conn[Send, Recv]) Messages() iter.Seq2[Recv, error] {
	return func(yield func(Recv, error) bool) {
		for {
			it, ok := c.next()
			if !ok {
				return
			}
			if it.status != nil {
				if c.cfg.status != nil {
					c.cfg.status(*it.status)
				}
				continue
			}
			if it.pos.Epoch != "" {
				c.mu.Lock()
				c.given = it.pos
				c.mu.Unlock()
			}
			if !yield(it.msg, it.err) || it.final {
				return
			}
		}
	}
}

// next returns what the range sees next, and false when it is to end
// without an error. Close and the context end the range at once, even
// with messages held; a final error comes after what arrived before it.
func (c *Conn[Send, Recv]) next() (item[Recv], bool) {
	if c.ctx.Err() != nil {
		return c.cancelled()
	}
	select {
	case it := <-c.items:
		return it, true
	case <-c.ctx.Done():
		return c.cancelled()
	case <-c.stopped:
		select {
		case it := <-c.items:
			return it, true
		default:
			return item[Recv]{err: c.final, final: true}, true
		}
	}
}

// cancelled is the end of a range after Close (none) or after Dial's
// context was cancelled (its error).
func (c *Conn[Send, Recv]) cancelled() (item[Recv], bool) {
	cause := context.Cause(c.ctx)
	if errors.Is(cause, ErrClosed) {
		return item[Recv]{}, false
	}
	return item[Recv]{err: cause, final: true}, true
}

// push queues it for the range, waiting while the range is behind, and
// reports false if the Conn was closed meanwhile.
func (c *Conn[Send, Recv]) push(it item[Recv]) bool {
	select {
	case c.items <- it:
		return true
	case <-c.ctx.Done():
		return false
	}
}
