package wsroom

import (
	"errors"
	"net"
	"os"
	"sync"
	"time"
)

// The writer. Each connection has a bounded queue of complete frames. A
// connection with frames queued is handed to its endpoint's pool of writer
// goroutines (at most GOMAXPROCS, started on demand, gone when idle): a
// worker takes everything the connection has queued and writes it with one
// non-blocking writev. While a worker goes round the connections, new
// frames pile up behind each one, so the busier the server, the more frames
// each syscall carries. A socket that cannot take everything at once gets a
// flusher goroutine of its own, which writes with blocking calls under the
// write timeout until the queue is empty, then hands the connection back to
// the pool; so does a closing connection, and every connection on a socket
// without a non-blocking writev (TLS, other platforms). Every byte to the
// socket, including gws's own close frames, is written under wmu, so frames
// never interleave.

// aLongTimeAgo is a deadline in the past: setting it interrupts a blocked
// read or write at once.
var aLongTimeAgo = time.Unix(1, 0)

// enqueue queues a complete frame for the peer, compressed if the peer
// negotiated it (compress_write.go). It never blocks on the network. On a
// full queue it applies the endpoint's overflow policy.
func (c *conn) enqueue(frame []byte) error {
	saved := 0
	if c.deflate {
		frame, saved = c.deflated(frame)
	}
	c.mu.Lock()
	if c.state != stateOpen {
		c.mu.Unlock()
		return ErrClosed
	}
	if c.frames >= c.cfg.queueFrames || (c.bytes > 0 && c.bytes+len(frame) > c.cfg.queueBytes) {
		c.mu.Unlock()
		return c.overflow()
	}
	c.queue.push(frame)
	c.frames++
	c.bytes += len(frame)
	if saved > 0 {
		c.compressedQueued++
		c.savedQueued += saved
	}
	schedule := !c.scheduled
	c.scheduled = true
	c.mu.Unlock()
	if schedule {
		c.schedule()
	}
	return nil
}

// schedule hands a connection with frames to write to the pool, or to a
// flusher of its own when its socket has no non-blocking writev.
func (c *conn) schedule() {
	if c.direct == nil {
		go c.flushFn()
		return
	}
	c.owner.writers.push(c)
}

// overflow applies the overflow policy to a frame that met a full queue.
func (c *conn) overflow() error {
	if c.cfg.overflow == OverflowDrop {
		c.stats.dropped.Add(1)
		return ErrSendQueueFull
	}
	c.closeForPolicy("slow consumer", c.stats.countSlowConsumer)
	return ErrSendQueueFull
}

// writeSome is a pool worker's turn on c: it writes what is queued without
// blocking. What the socket does not take goes to a flusher of c's own, and
// so does a closing connection: neither may hold up a shared worker.
func (c *conn) writeSome(w *worker) {
	c.mu.Lock()
	if c.state != stateOpen {
		c.mu.Unlock()
		go c.flushFn()
		return
	}
	// The batch lives in the worker: a local would escape to the heap
	// through the writer's interface, once per write.
	w.batch = c.queue.take()
	if w.batch.empty() {
		c.scheduled = false
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()

	frames, written, err := c.writeNow(w, &w.batch)
	// Counted before the rest may go to the flusher, which counts only
	// what it writes itself.
	c.countWritten(frames, written)
	if err != nil {
		w.batch.drop() // the connection is lost: the rest will never go
	}
	c.mu.Lock()
	c.unqueue(frames, written)
	if !w.batch.empty() || c.state != stateOpen {
		c.carry = w.batch.take() // unwritten: the flusher writes it first
		c.mu.Unlock()
		go c.flushFn()
		return
	}
	more := !c.queue.empty()
	c.scheduled = more
	c.mu.Unlock()
	if err != nil {
		c.writeFailed(err)
		return
	}
	if more {
		c.owner.writers.push(c) // the next round: frames pile up meanwhile
	}
}

// writeNow writes what the socket takes without blocking, consuming it
// from batch.
func (c *conn) writeNow(w *worker, batch *frameList) (frames, bytes int, err error) {
	if !c.wmu.TryLock() {
		return 0, 0, nil // gws is writing: leave it all to the flusher
	}
	defer c.wmu.Unlock()
	if c.writeDone {
		return 0, 0, nil // the flusher finds out why
	}
	frames, bytes, err = c.direct.writev(w, batch)
	if err != nil {
		c.writeDone = true
	}
	return frames, bytes, err
}

// flush is a connection's own flusher: it writes, with blocking calls under
// the write timeout, what a worker could not write, then the queue until it
// is empty, then, if the connection is closing, the close frame.
func (c *conn) flush() {
	c.mu.Lock()
	batch := c.carry
	c.carry = frameList{}
	c.mu.Unlock()
	for {
		if !batch.empty() && !c.writeBatch(&batch) {
			return
		}
		c.mu.Lock()
		if c.state == stateClosed {
			c.mu.Unlock()
			return
		}
		batch = c.queue.take()
		if batch.empty() {
			if c.state == stateClosing {
				final := c.closeFrame
				c.mu.Unlock()
				c.writeFinal(final)
				c.finish(nil)
				return
			}
			c.scheduled = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
	}
}

// writeBatch writes batch with a blocking call and accounts for it. It
// reports false when the write failed and the connection is ending.
func (c *conn) writeBatch(batch *frameList) bool {
	frames, size := batch.count()
	err := c.write(batch)
	batch.drop()
	c.mu.Lock()
	c.unqueue(frames, size)
	c.mu.Unlock()
	if err != nil {
		c.writeFailed(err)
		return false
	}
	c.countWritten(frames, size)
	return true
}

// unqueue takes frames and bytes that left the queue, written or dropped,
// off the queue's bound. c.mu must be held.
func (c *conn) unqueue(frames, bytes int) {
	c.frames -= frames
	c.bytes -= bytes
	if c.compressedQueued > 0 {
		c.countCompressed()
	}
}

// countWritten counts frames and bytes written to the socket.
func (c *conn) countWritten(frames, bytes int) {
	c.stats.messagesOut.Add(int64(frames))
	c.stats.bytesOut.Add(int64(bytes))
}

// flushIovecs are the flushers' batches being written, kept so that writev
// allocates nothing and no connection holds one while it is not writing.
var flushIovecs = sync.Pool{New: func() any { return new(net.Buffers) }}

// errGwsClosed stops the flusher after gws sent a close frame: the stream,
// which gws is reading for, ends the connection with the right cause.
var errGwsClosed = errors.New("wsroom: gws closed the connection")

// write writes a batch of frames in one call (writev on TCP), under the
// write deadline. A failed write may have left part of a frame: nothing is
// written after it.
func (c *conn) write(batch *frameList) error {
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
		iov := flushIovecs.Get().(*net.Buffers)
		for f := range batch.all {
			*iov = append(*iov, f)
		}
		bufs := *iov
		_, err = bufs.WriteTo(c.raw)
		clear(*iov)                 // WriteTo cleared what it wrote; past len was cleared before
		if cap(*iov) <= maxIovecs { // not a burst's worth: worth keeping
			*iov = (*iov)[:0]
			flushIovecs.Put(iov)
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
		c.scheduled = false
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	switch {
	case closing:
		c.finish(nil) // the close has its cause already
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.stats.countSlowConsumer()
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
