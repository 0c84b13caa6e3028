package wsroom

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lxzan/gws"
)

// Conn is one client's connection as its handler sees it. All its methods
// are safe to call from any goroutine, during and after the handler.
type Conn[Out any] struct {
	c conn
}

// Send queues v, encoded as JSON in one text frame, for the client. It never
// blocks on the network. It returns ErrClosed once the connection is closing,
// and ErrSendQueueFull when the send queue is at its bound (see
// WithOverflow for what then happens to the connection).
func (c *Conn[Out]) Send(v Out) error {
	frame, err := encodeFrame(&v)
	if err != nil {
		return fmt.Errorf("wsroom: encode: %w", err)
	}
	return c.c.enqueue(frame)
}

// Request returns the upgrade request: path values (r.PathValue), query and
// headers. Its context is the connection's (see Context).
func (c *Conn[Out]) Request() *http.Request { return c.c.req }

// Context returns a context that carries the request context's values and
// is cancelled when the connection starts closing; context.Cause then
// returns a *CloseError saying why.
func (c *Conn[Out]) Context() context.Context { return c.c.ctx }

// Close sends a close frame with code and reason after the frames already
// queued, ends the handler's stream (with no error), and closes the socket.
// code must be 1000, 1001 to 1003, 1007 to 1014, or 3000 to 4999; reason is
// cut to 123 bytes. Close on a closing connection returns ErrClosed.
func (c *Conn[Out]) Close(code StatusCode, reason string) error {
	if !validCloseCode(code) {
		return fmt.Errorf("wsroom: invalid close code %d", code)
	}
	if !c.c.closeWith(closedByHandler, code, reason, afterQueue, nil) {
		return ErrClosed
	}
	return nil
}

// ID returns the connection's identifier, unique within the process.
func (c *Conn[Out]) ID() uint64 { return c.c.id }

// RemoteAddr returns the address of the peer's socket (the proxy's, behind a
// reverse proxy; see Request for forwarding headers).
func (c *Conn[Out]) RemoteAddr() net.Addr { return c.c.raw.RemoteAddr() }

func validCloseCode(code StatusCode) bool {
	switch {
	case code == 1000, code >= 1001 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	default:
		return code >= 3000 && code <= 4999
	}
}

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

// conn is the connection machinery shared by every Conn[Out].
type conn struct {
	id     uint64
	cfg    *config
	stats  *counters
	owner  *server
	raw    net.Conn
	ws     *gws.Conn
	req    *http.Request
	ctx    context.Context
	cancel context.CancelCauseFunc

	mu         sync.Mutex
	state      connState
	cause      *CloseError // why the connection is closing, once known
	closedBy   closer
	closeFrame []byte        // written after the queue drains
	queue      frameList     // frames waiting to be written
	frames     int           // frames queued or being written; bounds an open connection only
	bytes      int           // bytes queued or being written; bounds an open connection only
	scheduled  bool          // a worker or a flusher has c in hand, or will
	carry      frameList     // what a worker could not write, for the flusher
	flushFn    func()        // c.flush, bound once: a go statement on it allocates nothing
	next       *conn         // the pool's list of connections to write
	direct     directWriter  // non-blocking writev on the socket; nil: flusher only
	leaves     []*membership // rooms to leave when the handler ends
	ended      bool          // the handler returned: no new memberships
	heartbeat  *time.Timer

	wmu       sync.Mutex
	writeDone bool        // a close frame went out, or a write failed: nothing may follow
	gwsClose  *CloseError // the close frame gws sent, if it sent one
	iov       net.Buffers // the flusher's batch being written; kept, so writev allocates nothing

	readMu   sync.Mutex  // held by the reader inside the socket; linger waits for it
	finished atomic.Bool // finish has run: writes stop
	parts    atomic.Int32

	ranging   atomic.Bool     // the stream has been ranged over
	closing   atomic.Bool     // set when closing starts: reads fail, gws may not write
	lastSeen  atomic.Int64    // nanotime of the last frame from the peer
	throttled atomic.Bool     // the reader waits for the rate limit: the peer's frames go unread, not unsent
	peerClose *gws.CloseError // the peer's close frame; reader goroutine only
	tokens    float64         // rate limit bucket; reader goroutine only
	refilled  int64           // nanotime the bucket was last refilled; reader goroutine only
	rateTimer *time.Timer     // what a throttled reader waits on, made at its first wait; reader goroutine only
}

// closeMode says what happens to the frames queued when a close starts.
type closeMode int

const (
	afterQueue closeMode = iota // the close frame follows the queued frames
	dropQueue                   // queued frames are dropped; the one being written finishes
	abandon                     // the peer is presumed gone: the write in progress is cut short too
)

// closeWith starts closing the connection: the close frame is queued as the
// mode says, the context is cancelled and the handler's stream ends. It
// reports whether this call started the close. started, if not nil, runs
// only in the call that starts the close and before anything of the close
// is visible (the context, the close frame): what it counts or logs is
// there by the time the peer or the handler sees the connection end.
func (c *conn) closeWith(by closer, code StatusCode, reason string, mode closeMode, started func()) bool {
	c.mu.Lock()
	if c.state != stateOpen {
		c.mu.Unlock()
		return false
	}
	c.state = stateClosing
	c.cause = &CloseError{Code: code, Reason: reason}
	c.closedBy = by
	c.closeFrame = closeFrame(code, reason)
	if mode != afterQueue {
		c.queue.drop()
	}
	start := !c.scheduled
	c.scheduled = true
	cause := c.cause
	c.mu.Unlock()

	if started != nil {
		started()
	}
	c.stopReading() // first: a reader woken by the context must find reads over
	c.cancel(cause)
	if mode == abandon {
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
	if c.heartbeat != nil {
		c.heartbeat.Stop()
	}
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

// touch records that the peer is alive.
func (c *conn) touch() { c.lastSeen.Store(nanotime()) }

// received records an inbound message and takes a token for it from the
// rate limit's bucket. If the bucket is empty it takes none and returns
// how long until it holds one.
func (c *conn) received() time.Duration {
	now := nanotime()
	c.lastSeen.Store(now)
	if c.cfg.rate == 0 {
		return 0
	}
	return c.take(now)
}

// maxRateWait bounds one wait of a throttled reader, so that a tiny rate
// cannot overflow a Duration; a reader that wakes early waits again.
const maxRateWait = time.Hour

// take refills the bucket for the time since the last refill and takes a
// token, or returns how long until there is one. The refill counts the
// time that passed, not the time waited for, so a timer that fires late
// does not slow the rate down.
func (c *conn) take(now int64) time.Duration {
	burst := float64(c.cfg.burst)
	if c.refilled == 0 {
		c.tokens = burst
	} else {
		c.tokens = min(burst, c.tokens+float64(now-c.refilled)*c.cfg.rate/1e9)
	}
	c.refilled = now
	if c.tokens < 1 {
		return time.Duration(min(math.Ceil((1-c.tokens)*1e9/c.cfg.rate), float64(maxRateWait)))
	}
	c.tokens--
	return 0
}

// throttle holds the reader for wait, and longer if need be, until the
// bucket has a token for the message it read, and takes it. It reports
// false if the connection started closing meanwhile: the message is then
// not to be handled. The idle timeout does not run while it waits.
func (c *conn) throttle(wait time.Duration) bool {
	c.stats.throttled.Add(1)
	c.throttled.Store(true)
	defer c.throttled.Store(false)
	for wait > 0 {
		if c.rateTimer == nil {
			c.rateTimer = time.NewTimer(wait)
		} else {
			c.rateTimer.Reset(wait) // stopped or fired: no stale tick (Go 1.23 timers)
		}
		select {
		case <-c.rateTimer.C:
		case <-c.ctx.Done():
			c.rateTimer.Stop()
			return false
		}
		if c.closing.Load() {
			return false
		}
		wait = c.take(nanotime())
	}
	c.touch() // before the flag clears: the idle timeout counts from here
	return true
}

// startHeartbeat arms the timer that pings the peer and closes it when it
// has been silent past the idle timeout.
func (c *conn) startHeartbeat() {
	if c.cfg.pingInterval <= 0 {
		return
	}
	c.mu.Lock()
	if c.state == stateOpen {
		c.heartbeat = time.AfterFunc(c.cfg.pingInterval, c.beat)
	}
	c.mu.Unlock()
}

func (c *conn) beat() {
	// A throttled reader reads none of the peer's frames, pongs included:
	// the peer is not silent, it is not being heard.
	if !c.throttled.Load() && time.Duration(nanotime()-c.lastSeen.Load()) > c.cfg.idleTimeout {
		c.closeWith(closedByServer, StatusGoingAway, "idle timeout", abandon, nil)
		return
	}
	// A ping dropped on a full queue (OverflowDrop) is not fatal: the next
	// beat tries again, and the idle check still runs.
	if errors.Is(c.enqueue(pingFrame), ErrClosed) {
		return
	}
	c.mu.Lock()
	if c.state == stateOpen {
		c.heartbeat.Reset(c.cfg.pingInterval)
	}
	c.mu.Unlock()
}

// membership is a room subscription a connection drops when its handler
// ends, if the handler did not drop it first.
type membership struct {
	leave func()
}

// join remembers m. It reports false, remembering nothing, once the handler
// has ended: the caller must then leave at once.
func (c *conn) join(m *membership) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		return false
	}
	c.leaves = append(c.leaves, m)
	return true
}

// forget drops m from the memberships to leave.
func (c *conn) forget(m *membership) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, x := range c.leaves {
		if x == m {
			c.leaves = append(c.leaves[:i], c.leaves[i+1:]...)
			return
		}
	}
}

// release is called twice per connection: when its handler returns and when
// its socket is closed. The second call lets the endpoint forget it.
func (c *conn) release() {
	if c.parts.Add(-1) == 0 {
		c.owner.retire(c)
	}
}

// leaveRooms drops the memberships the handler did not drop itself.
func (c *conn) leaveRooms() {
	c.mu.Lock()
	leaves := c.leaves
	c.leaves = nil
	c.ended = true
	c.mu.Unlock()
	for _, m := range leaves {
		m.leave()
	}
}

var epoch = time.Now()

// nanotime is a monotonic clock reading.
func nanotime() int64 { return int64(time.Since(epoch)) }

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
