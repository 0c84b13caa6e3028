package wsroom

import "time"

// The close sequence. Every way a connection ends has an entry point named
// for it below; each starts the same sequence (startClose): the close frame
// is queued, the context is cancelled and the handler's stream ends. The
// flusher writes the close frame and calls finish, which shuts the socket
// down; linger then closes it politely.

type connState int

const (
	stateOpen    connState = iota
	stateClosing           // close frame waits behind the queue
	stateClosed            // socket shut; nothing more is written
)

// closer says who started a close; it decides what the stream yields.
type closer int

const (
	closedByHandler closer = iota // Close, or the handler ended: the stream ends quietly
	closedByServer                // a policy (slow consumer, idle, shutdown...): the stream yields the CloseError
)

// closeMode says what happens to the frames queued when a close starts.
type closeMode int

const (
	afterQueue closeMode = iota // the close frame follows the queued frames
	dropQueue                   // queued frames are dropped; the one being written finishes
	abandon                     // the peer is presumed gone: the write in progress is cut short too
)

// closeLinger bounds how long a closed connection waits for the peer to
// finish its side of the closing handshake before the socket is dropped.
const closeLinger = 2 * time.Second

const shutdownReason = "server shutting down"

// closeByHandler closes after the queued frames, as the handler asked
// (Close, or its return): the stream ends with no error.
func (c *conn) closeByHandler(code StatusCode, reason string) bool {
	return c.startClose(closeRequest{by: closedByHandler, code: code, reason: reason})
}

// closeInvalid closes after the queued frames for an invalid message under
// InvalidClose.
func (c *conn) closeInvalid(reason string) {
	c.startClose(closeRequest{by: closedByServer, code: StatusInvalidPayload, reason: reason})
}

// closeInternalError closes after the queued frames for a handler that
// panicked or failed. logged, if not nil, runs only if this call started
// the close, before the handler or the peer can see it.
func (c *conn) closeInternalError(logged func()) {
	c.startClose(closeRequest{by: closedByServer, code: StatusInternalError, reason: "internal error", started: logged})
}

// closeGoingAway closes after the queued frames: the endpoint shuts down.
func (c *conn) closeGoingAway() {
	c.startClose(closeRequest{by: closedByServer, code: StatusGoingAway, reason: shutdownReason})
}

// closeForPolicy closes a connection that broke a policy (slow consumer,
// rate limit) with StatusPolicyViolation, dropping what it has queued.
// counted counts the close, before it can be seen, if this call started it.
func (c *conn) closeForPolicy(reason string, counted func()) {
	c.startClose(closeRequest{by: closedByServer, code: StatusPolicyViolation, reason: reason, mode: dropQueue, started: counted})
}

// closeIdle closes a peer silent past the idle timeout: it is presumed
// gone, so even the write in progress is cut short.
func (c *conn) closeIdle() {
	c.startClose(closeRequest{by: closedByServer, code: StatusGoingAway, reason: "idle timeout", mode: abandon})
}

// closeRequest is one way of closing, as the entry points above spell it.
type closeRequest struct {
	by      closer
	code    StatusCode
	reason  string
	mode    closeMode
	started func() // if not nil, runs only in the call that starts the close, before anything of it is visible
}

// startClose starts closing the connection as req says. It reports whether
// this call started the close.
func (c *conn) startClose(req closeRequest) bool {
	c.mu.Lock()
	if c.state != stateOpen {
		c.mu.Unlock()
		return false
	}
	c.state = stateClosing
	c.cause = &CloseError{Code: req.code, Reason: req.reason}
	c.closedBy = req.by
	c.closeFrame = closeFrame(req.code, req.reason)
	if req.mode != afterQueue {
		c.queue.drop()
	}
	start := !c.scheduled
	c.scheduled = true
	cause := c.cause
	c.mu.Unlock()

	if req.started != nil {
		req.started() // what it counts or logs is there by the time anyone sees the end
	}
	c.stopReading() // first: a reader woken by the context must find reads over
	c.cancel(cause)
	if req.mode == abandon {
		_ = c.raw.SetWriteDeadline(aLongTimeAgo)
	}
	if start {
		go c.flushFn()
	}
	return true
}

// finish is the end of every connection: it shuts the socket down once,
// whoever gets there first (the flusher after the close frame, a write
// error, or the stream after the peer's close or a protocol error).
func (c *conn) finish(cause *CloseError) {
	c.mu.Lock()
	if c.state == stateClosed {
		c.mu.Unlock()
		return
	}
	c.state = stateClosed
	if c.cause == nil {
		c.cause, c.closedBy = cause, closedByServer
	}
	cause = c.cause
	c.queue.drop()
	c.mu.Unlock()

	c.finished.Store(true)
	c.stopReading() // first: a reader woken by the context must find reads over
	c.cancel(cause)
	_ = c.raw.SetWriteDeadline(aLongTimeAgo) // interrupt a blocked write
	go c.linger()
}

// stopReading ends the handler's stream: reads fail from now on, and gws,
// which then reports the failure with a close frame of its own, is not
// heard: the connection's own close frame is on its way.
func (c *conn) stopReading() {
	if !c.closing.Swap(true) {
		_ = c.raw.SetReadDeadline(aLongTimeAgo)
	}
}

// linger closes the socket politely: it half-closes the write side (the
// peer sees the close frame, then end of stream) and reads until the peer
// closes too or closeLinger passes, so the peer's unread data does not make
// the kernel reset the connection and destroy the close frame in flight.
func (c *conn) linger() {
	defer c.release()
	c.wmu.Lock()
	c.writeDone = true
	c.wmu.Unlock()
	// Wait for a reader still inside the socket (stopReading interrupted
	// it) so that the deadline below does not put it back to sleep.
	c.readMu.Lock()
	_ = c.closing.Load() // nothing to do inside: taking the lock is the wait
	c.readMu.Unlock()
	if cw, ok := c.raw.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_ = c.raw.SetReadDeadline(time.Now().Add(closeLinger))
	var buf [512]byte
	for {
		if _, err := c.raw.Read(buf[:]); err != nil {
			break
		}
	}
	_ = c.raw.Close()
}
