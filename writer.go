package wsroom

import (
	"errors"
	"net"
	"os"
	"time"
)

// The writer: each connection has a bounded queue of complete frames and at
// most one flusher goroutine, started when the queue turns non-empty and
// gone when it drains, so an idle connection costs no goroutine. The flusher
// takes everything queued and writes it in one call (writev on TCP), so a
// connection that fell behind catches up with few syscalls. Every byte to
// the socket, including gws's own close frames, is written under wmu, so
// frames never interleave.

// aLongTimeAgo is a deadline in the past: setting it interrupts a blocked
// read or write at once.
var aLongTimeAgo = time.Unix(1, 0)

// maxSpareBatch bounds the batch slice a connection keeps for reuse, so one
// burst does not pin a large slice to an idle connection.
const maxSpareBatch = 64

// enqueue queues a complete frame for the peer. It never blocks on the
// network. On a full queue it applies the endpoint's overflow policy.
func (c *conn) enqueue(frame []byte) error {
	c.mu.Lock()
	if c.state != stateOpen {
		c.mu.Unlock()
		return ErrClosed
	}
	if c.frames >= c.cfg.queueFrames || (c.bytes > 0 && c.bytes+len(frame) > c.cfg.queueBytes) {
		c.mu.Unlock()
		return c.overflow()
	}
	c.queue = append(c.queue, frame)
	c.frames++
	c.bytes += len(frame)
	start := !c.flushing
	c.flushing = true
	c.mu.Unlock()
	if start {
		go c.flushFn()
	}
	return nil
}

// overflow applies the overflow policy to a frame that met a full queue.
func (c *conn) overflow() error {
	if c.cfg.overflow == OverflowDrop {
		c.stats.dropped.Add(1)
		return ErrSendQueueFull
	}
	if c.closeWith(closedByServer, StatusPolicyViolation, "slow consumer", dropQueue) {
		c.stats.slowConsumerCloses.Add(1)
	}
	return ErrSendQueueFull
}

// flush writes queued frames until the queue is empty, then, if the
// connection is closing, the close frame.
func (c *conn) flush() {
	for {
		c.mu.Lock()
		if c.state == stateClosed {
			c.mu.Unlock()
			return
		}
		batch := c.queue
		if len(batch) == 0 {
			if c.state == stateClosing {
				final := c.closeFrame
				c.mu.Unlock()
				c.writeFinal(final)
				c.finish(nil)
				return
			}
			c.flushing = false
			c.mu.Unlock()
			return
		}
		c.queue, c.spare = c.spare, nil
		c.mu.Unlock()

		size := 0
		for _, f := range batch {
			size += len(f)
		}
		err := c.write(batch)
		frames := len(batch)
		clear(batch)

		c.mu.Lock()
		c.frames -= frames
		c.bytes -= size
		if cap(batch) <= maxSpareBatch {
			c.spare = batch[:0]
		}
		c.mu.Unlock()
		if err != nil {
			c.writeFailed(err)
			return
		}
		c.stats.messagesOut.Add(int64(frames))
		c.stats.bytesOut.Add(int64(size))
	}
}

// errGwsClosed stops the flusher after gws sent a close frame: the stream,
// which gws is reading for, ends the connection with the right cause.
var errGwsClosed = errors.New("wsroom: gws closed the connection")

// write writes a batch of frames in one call, under the write deadline. A
// failed write may have left part of a frame: nothing is written after it.
func (c *conn) write(batch [][]byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.writeDone {
		if c.gwsClose != nil {
			return errGwsClosed
		}
		return net.ErrClosed
	}
	err := c.raw.SetWriteDeadline(time.Now().Add(c.cfg.writeTimeout))
	if err == nil && c.finished.Load() {
		err = net.ErrClosed // finish's interruption came before our deadline
	}
	if err == nil {
		if len(batch) == 1 {
			_, err = c.raw.Write(batch[0])
		} else {
			c.iov = batch
			_, err = c.iov.WriteTo(c.raw)
			c.iov = nil
		}
	}
	if err != nil {
		c.writeDone = true
	}
	return err
}

// writeFailed ends a connection whose socket write failed. A write that
// timed out on an open connection means a client that accepts no data: a
// slow consumer.
func (c *conn) writeFailed(err error) {
	c.mu.Lock()
	closing := c.state != stateOpen
	if errors.Is(err, errGwsClosed) && !closing {
		// gws is ending the connection from the reader, which finishes
		// it. Should a close start meanwhile, it starts a new flusher,
		// which finds the socket done and finishes.
		c.flushing = false
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	switch {
	case closing:
		c.finish(nil) // the close has its cause already
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.stats.slowConsumerCloses.Add(1)
		c.finish(&CloseError{Code: StatusPolicyViolation, Reason: "slow consumer: write timed out"})
	default:
		c.finish(&CloseError{Code: StatusGoingAway, Reason: "connection lost: " + err.Error()})
	}
}

// writeFinal writes the close frame, the last frame of the connection.
func (c *conn) writeFinal(frame []byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.writeDone {
		return
	}
	c.writeDone = true
	if c.raw.SetWriteDeadline(time.Now().Add(c.cfg.writeTimeout)) == nil {
		_, _ = c.raw.Write(frame)
	}
}

// wire is the net.Conn gws reads from and writes to. It routes gws's writes
// (the upgrade response, and close frames it sends on protocol errors or in
// reply to the peer's close) through the connection's write lock, and it
// stops reads once the connection is closing so the handler's range ends.
type wire struct {
	net.Conn
	c       *conn
	pending []byte // bytes the HTTP server read past the upgrade request
}

func (w *wire) Read(p []byte) (int, error) {
	c := w.c
	c.readMu.Lock()
	defer c.readMu.Unlock()
	if c.closing.Load() {
		return 0, net.ErrClosed
	}
	if len(w.pending) > 0 {
		n := copy(p, w.pending)
		w.pending = w.pending[n:]
		return n, nil
	}
	n, err := w.Conn.Read(p)
	if c.closing.Load() {
		return 0, net.ErrClosed
	}
	return n, err
}

func (w *wire) Write(p []byte) (int, error) {
	c := w.c
	if c.closing.Load() {
		return 0, net.ErrClosed // without waiting behind a blocked flusher
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.writeDone || c.closing.Load() {
		return 0, net.ErrClosed
	}
	if len(p) > 0 && p[0] == 0x80|opClose {
		// gws ends the connection: nothing may follow its close frame.
		c.writeDone = true
		c.gwsClose = parseCloseFrame(p)
	}
	return w.Conn.Write(p)
}

// Close is called by gws after its close frame. The socket itself is closed
// by the connection once the handler's stream has seen the end.
func (w *wire) Close() error { return nil }

// parseCloseFrame reads the code and reason of an unmasked close frame.
func parseCloseFrame(frame []byte) *CloseError {
	p := framePayload(frame)
	if len(p) < 2 {
		return &CloseError{Code: StatusNoStatus}
	}
	return &CloseError{Code: StatusCode(uint16(p[0])<<8 | uint16(p[1])), Reason: string(p[2:])}
}
