package wsroom

import (
	"context"
	"errors"
	"iter"
	"net/http"
	"runtime/debug"
)

// A Handler serves one connection, in a goroutine of its own: ServeHTTP
// returns once the connection is upgraded, so middleware around the endpoint
// sees the upgrade, not the connection's whole life.
// msgs yields the client's messages, each decoded from JSON into In and
// validated against In's schema; ranging over it runs the connection's read
// loop, so a handler that stops ranging stops reading (pings go unanswered,
// the peer's close goes unseen). The range ends with no error when the peer
// closes normally or the connection is closed with Close; otherwise its last
// pair carries the error (a *CloseError when a close code is known).
// Breaking out of the range, or returning from inside it, ends the
// connection: nothing more is read, and it is closed as the handler returns,
// with the code its return value chooses.
//
// When the handler returns, the connection leaves the rooms it joined and is
// closed: with StatusNormalClosure for a nil error, with the code of a
// returned *CloseError, or with StatusInternalError (the error is logged)
// for any other error while the connection was still open. A panic closes
// it with StatusInternalError and is logged; it never reaches other
// connections.
type Handler[In, Out any] func(c *Conn[Out], msgs iter.Seq2[In, error]) error

// Endpoint is an http.Handler that upgrades requests to WebSocket
// connections served by a Handler. Mount it on any router, behind any
// middleware; it answers 426 to a request that is not a WebSocket upgrade.
type Endpoint[In, Out any] struct {
	handler Handler[In, Out]
	schemas *schemas
	srv     *server
}

// New returns an endpoint serving handler. It reflects the JSON Schemas of
// In and Out once, here; it panics if they cannot be built or compiled, or
// if an option is malformed, as these are programming errors best found at
// start-up.
func New[In, Out any](handler Handler[In, Out], opts ...Option) *Endpoint[In, Out] {
	cfg := newConfig(opts)
	if err := cfg.validate(); err != nil {
		panic(err)
	}
	s, err := compileSchemas(cfg.reflector, new(In), new(Out))
	if err != nil {
		panic(err)
	}
	return &Endpoint[In, Out]{handler: handler, schemas: s, srv: newServer(cfg)}
}

// ServeHTTP checks and upgrades the request, then runs the handler until the
// connection ends. Refusals are plain HTTP answers: 426 for a request that
// is not an upgrade, 403 for a cross-origin request (see
// WithOriginPatterns), 401 or 403 from the guard, 503 while shutting down or
// at the connection cap.
func (e *Endpoint[In, Out]) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	cfg, pending, ok := e.srv.accept(w, r)
	if !ok {
		return
	}
	cc := newConn[Out](cfg)
	if !e.srv.upgrade(&cc.conn, pending) {
		return
	}
	// The handler gets a goroutine of its own and ServeHTTP returns: the
	// HTTP server's per-connection state (its buffers, the response) is
	// freed instead of living as long as the WebSocket.
	go e.serve(cc)
}

// serve runs the handler of an upgraded connection, then closes it. Its
// frame is under every wait of the connection's goroutine (see messages),
// so all but the call itself is in end, deferred.
func (e *Endpoint[In, Out]) serve(cc *Conn[Out]) {
	var r handlerResult
	defer e.end(cc, &r)
	r.err = e.handler(cc, messages[In](&cc.conn, e.schemas))
	r.returned = true
}

// handlerResult is how a handler ended.
type handlerResult struct {
	err      error
	returned bool // false: it panicked (or called runtime.Goexit)
}

// end closes the connection of a handler that ended as r says, turning a
// panic into a logged close.
func (e *Endpoint[In, Out]) end(cc *Conn[Out], r *handlerResult) {
	c := &cc.conn
	defer c.release()
	if !r.returned {
		// recover works here, directly in the deferred call, and only here.
		if p := recover(); p != nil {
			e.srv.cfg.logger.Error("wsroom: handler panicked", "conn", c.id, "path", c.req.URL.Path,
				"panic", p, "stack", string(debug.Stack()))
		}
	}
	c.leaveRooms()
	var ce *CloseError
	switch {
	case !r.returned:
		c.closeInternalError(nil) // logged above, or runtime.Goexit: nothing to log
	case r.err == nil:
		c.closeByHandler(StatusNormalClosure, "")
	case errors.As(r.err, &ce) && validCloseCode(ce.Code):
		c.closeByHandler(ce.Code, ce.Reason)
	default:
		c.closeInternalError(func() {
			e.srv.cfg.logger.Error("wsroom: handler failed", "conn", c.id, "path", c.req.URL.Path, "error", r.err)
		})
	}
}

// Shutdown refuses new upgrades with 503, closes every connection with
// StatusGoingAway ("server shutting down"), and waits until every handler
// has returned and every socket is closed, or ctx ends. Call it beside
// http.Server.Shutdown, which does not wait for hijacked connections:
//
//	go srv.Shutdown(ctx)
//	ep.Shutdown(ctx)
func (e *Endpoint[In, Out]) Shutdown(ctx context.Context) error { return e.srv.Shutdown(ctx) }

// Stats returns a snapshot of the endpoint's counters; it is cheap and safe
// to call at any time.
func (e *Endpoint[In, Out]) Stats() Stats { return e.srv.stats.snapshot() }

// Schemas returns the JSON Schemas of In and Out (draft 2020-12), as
// reflected from their types: the contract to hand to client developers.
func (e *Endpoint[In, Out]) Schemas() (in, out []byte) {
	return append([]byte(nil), e.schemas.in...), append([]byte(nil), e.schemas.out...)
}
