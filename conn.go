package wsroom

import (
	"bufio"
	"context"
	"fmt"
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
	conn conn
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
	return c.conn.enqueue(frame)
}

// Request returns the upgrade request: path values (r.PathValue), query and
// headers. Its context is the connection's (see Context).
func (c *Conn[Out]) Request() *http.Request { return c.conn.req }

// Context returns a context that carries the request context's values and
// is cancelled when the connection starts closing; context.Cause then
// returns a *CloseError saying why.
func (c *Conn[Out]) Context() context.Context { return c.conn.ctx }

// Close sends a close frame with code and reason after the frames already
// queued, ends the handler's stream (with no error), and closes the socket.
// code must be 1000, 1001 to 1003, 1007 to 1014, or 3000 to 4999; reason is
// cut to 123 bytes. Close on a closing connection returns ErrClosed.
func (c *Conn[Out]) Close(code StatusCode, reason string) error {
	if !validCloseCode(code) {
		return fmt.Errorf("wsroom: invalid close code %d", code)
	}
	if !c.conn.closeByHandler(code, reason) {
		return ErrClosed
	}
	return nil
}

// ID returns the connection's identifier, unique within the process.
func (c *Conn[Out]) ID() uint64 { return c.conn.id }

// RemoteAddr returns the address of the peer's socket (the proxy's, behind a
// reverse proxy; see Request for forwarding headers).
func (c *Conn[Out]) RemoteAddr() net.Addr { return c.conn.raw.RemoteAddr() }

// conn is the connection machinery shared by every Conn[Out]. Its fields
// are grouped by what guards them; read.go, write.go and close.go hold the
// three sides of its life.
type conn struct {
	// Set by newConn, then only read.
	id      uint64
	cfg     *config
	stats   *counters
	owner   *server
	raw     net.Conn
	direct  directWriter // non-blocking writev on the socket; nil: flusher only
	req     *http.Request
	ctx     context.Context
	cancel  context.CancelCauseFunc
	flushFn func()    // c.flush, bound once: a go statement on it allocates nothing
	ws      *gws.Conn // set by the handshake, before the handler runs
	resume  *Position // where the client asked to recover from (QuerySince); nil: a fresh start
	deflate bool      // permessage-deflate negotiated (compress.go); set by the handshake

	// Guarded by mu.
	mu sync.Mutex
	// The send queue.
	queue     frameList // frames waiting to be written
	frames    int       // frames queued or being written; bounds an open connection only
	bytes     int       // bytes queued or being written; bounds an open connection only
	scheduled bool      // a worker or a flusher has c in hand, or will
	carry     frameList // what a worker could not write, for the flusher
	// Frames queued compressed since the last write, and the bytes they
	// saved: counted in Stats as they are written (countCompressed).
	compressedQueued, savedQueued int
	// The close sequence.
	state      connState
	cause      *CloseError // why the connection is closing, once known
	closedBy   closer
	closeFrame []byte // written after the queue drains
	// The rooms joined.
	leaves []*membership // rooms to leave when the handler ends
	ended  bool          // the handler returned: no new memberships

	// Guarded by wmu: the socket's write side. Every byte written to the
	// socket, gws's included, is written under wmu.
	wmu       sync.Mutex
	writeDone bool        // a close frame went out, or a write failed: nothing may follow
	gwsClose  *CloseError // the close frame gws sent, if it sent one

	// Owned by the writers' list: the next connection to write.
	next *conn

	// The read side. readMu is held by the reader inside the socket, and
	// linger waits for it; the rest belongs to the reader goroutine.
	readMu    sync.Mutex
	wire      wire            // the net.Conn gws reads from and writes to
	in        socketInput     // what was read from the socket and not yet by gws; guarded by readMu
	br        *bufio.Reader   // gws's reader, on wire
	peerClose *gws.CloseError // the peer's close frame
	rate      rateBucket
	inflateOp byte // the opcode of the message gws is reading, if compressed (compress_read.go)

	// Atomic: read and written from any goroutine.
	ranging   atomic.Bool  // the stream has been ranged over
	closing   atomic.Bool  // set when closing starts: reads fail, gws may not write
	finished  atomic.Bool  // finish has run: writes stop
	lastSeen  atomic.Int64 // nanotime of the last frame from the peer
	throttled atomic.Bool  // the reader waits for the rate limit: the peer's frames go unread, not unsent
	parts     atomic.Int32 // the handler and the socket: the second release retires c
}

// connConfig is what a connection is made of.
type connConfig struct {
	server *server
	raw    net.Conn      // the hijacked socket
	direct directWriter  // raw's non-blocking writer, or nil
	req    *http.Request // the upgrade request
	resume *Position     // the position the request asked to recover from, if any
}

// lastID numbers connections across the process.
var lastID atomic.Uint64

// newConn returns the connection of cc, not yet upgraded: the handshake
// sets ws.
func newConn[Out any](cc connConfig) *Conn[Out] {
	// The request's context is cancelled when ServeHTTP returns, long
	// before the connection ends: keep its values, not its cancellation.
	ctx, cancel := context.WithCancelCause(context.WithoutCancel(cc.req.Context()))
	x := &Conn[Out]{conn: conn{
		id:     lastID.Add(1),
		cfg:    cc.server.cfg,
		stats:  &cc.server.stats,
		owner:  cc.server,
		raw:    cc.raw,
		direct: cc.direct,
		req:    cc.req.WithContext(ctx),
		ctx:    ctx,
		cancel: cancel,
		resume: cc.resume,
	}}
	x.conn.flushFn = x.conn.flush
	return x
}

// release is called twice per connection: when its handler returns and when
// its socket is closed. The second call lets the endpoint forget it.
func (c *conn) release() {
	if c.parts.Add(-1) == 0 {
		c.owner.retire(c)
	}
}

var epoch = time.Now()

// nanotime is a monotonic clock reading.
func nanotime() int64 { return int64(time.Since(epoch)) }
