package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/lxzan/gws"
	"github.com/wsroom/wsroom"
)

// Conn is a client connection to a wsroom endpoint that outlives the
// connections it is made of: it sends Send values and yields Recv values,
// each as JSON in one text frame, and reconnects when its connection is
// lost (see the package doc). Send, Position and Close may be called from
// any goroutine; Messages is for one range at a time.
type Conn[Send, Recv any] struct {
	cfg   *config
	url   *url.URL
	valid *validator // nil: no validation

	ctx     context.Context // cancelled by Close (cause ErrClosed) or by Dial's context
	cancel  context.CancelCauseFunc
	items   chan item[Recv] // what the range is to see, in order
	stopped chan struct{}   // closed when the Conn has ended and its goroutines returned
	final   error           // why it ended by itself; written before stopped is closed
	level   int             // the backoff's exponent: failed attempts and short-lived connections in a row; run's alone

	mu    sync.Mutex
	link  *link           // the connection that is up, nil while reconnecting
	last  wsroom.Position // the last recorded message received: where a reconnect resumes
	given wsroom.Position // the last recorded message the range was given
}

// link is one connection of a Conn.
type link struct {
	ws   *gws.Conn
	up   time.Time       // when its reader started
	from wsroom.Position // the position it asked to resume after, zero if none
	// asked: its upgrade asked to recover, so the server may send notices.
	asked bool
	done  chan struct{} // closed when its reader has returned
	err   error         // why it ended; written before done is closed
}

// Send writes v as JSON in one text frame. It does not wait for a
// connection: while the Conn reconnects it returns an error wrapping
// ErrReconnecting (also when the connection is lost during the write),
// and once the Conn has ended one wrapping ErrClosed.
func (c *Conn[Send, Recv]) Send(v Send) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("client: encode %T: %w", v, err)
	}
	if c.ended() {
		return ErrClosed
	}
	c.mu.Lock()
	l := c.link
	c.mu.Unlock()
	if l == nil {
		return ErrReconnecting
	}
	c.writeDeadline(l.ws)
	if err := l.ws.WriteMessage(gws.OpcodeText, b); err != nil {
		if c.ended() {
			return fmt.Errorf("%w: %w", ErrClosed, err)
		}
		return fmt.Errorf("%w: %w", ErrReconnecting, err)
	}
	return nil
}

// Position returns the position of the last recorded message the range
// over Messages was given, zero before the first. Given to WithPosition,
// it makes another Conn resume after it.
func (c *Conn[Send, Recv]) Position() wsroom.Position {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.given
}

// Close closes the connection with 1000, stops reconnecting, and returns
// once every goroutine of the Conn has returned. A range over Messages
// then ends, without an error. Close may be called more than once, from
// any goroutine, the WithStatus callback included.
func (c *Conn[Send, Recv]) Close() error {
	c.cancel(ErrClosed)
	<-c.stopped
	return nil
}

// ended reports whether the Conn has ended, by Close, its context, or a
// final error.
func (c *Conn[Send, Recv]) ended() bool {
	select {
	case <-c.stopped:
		return true
	default:
		return c.ctx.Err() != nil
	}
}

// start makes l the Conn's connection and starts its reader.
func (c *Conn[Send, Recv]) start(l *link) {
	l.up = time.Now()
	c.mu.Lock()
	c.link = l
	c.mu.Unlock()
	c.touch(l.ws)
	go func() {
		defer close(l.done)
		l.ws.ReadLoop()
	}()
}

// writeDeadline bounds the write about to be made on ws. Every write
// sets it: the socket's deadline is one for all writes, and a past one
// would fail the next.
func (c *Conn[Send, Recv]) writeDeadline(ws *gws.Conn) {
	_ = ws.SetWriteDeadline(time.Now().Add(c.cfg.writeTimeout))
}

// touch pushes the read deadline of ws back: something arrived.
func (c *Conn[Send, Recv]) touch(ws *gws.Conn) {
	if c.cfg.idleTimeout > 0 {
		_ = ws.SetReadDeadline(time.Now().Add(c.cfg.idleTimeout))
	}
}
