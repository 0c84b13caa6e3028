package wsroom

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/lxzan/gws"
)

// server is the part of an endpoint that does not depend on In or Out: the
// upgrade, the set of live connections, shutdown and stats.
type server struct {
	cfg      *config
	upgrader *gws.Upgrader
	stats    counters
	writers  *writers

	mu       sync.Mutex
	conns    map[*conn]struct{} // upgraded, with a handler running or a socket open
	pending  int                // admitted, handshake under way
	shutdown bool
	wg       sync.WaitGroup // one count per admitted connection, until retired
}

// lastID numbers connections across the process.
var lastID atomic.Uint64

func newServer(cfg *config) *server {
	return &server{
		cfg:     cfg,
		conns:   make(map[*conn]struct{}),
		writers: newWriters(),
		upgrader: gws.NewUpgrader(events{}, &gws.ServerOption{
			ReadMaxPayloadSize: cfg.readLimit,
			ReadBufferSize:     readBufferSize,
			CheckUtf8Enabled:   true,
			HandshakeTimeout:   cfg.handshakeTimeout,
			NewSession:         func() gws.SessionStorage { return noSession{} },
		}),
	}
}

// accept runs everything that comes before a handler: the upgrade request
// checks, the origin check, the guard, admission, the handshake. It answers
// the request itself and returns false when the connection is not to be made.
func (s *server) accept(w http.ResponseWriter, r *http.Request, c *conn) bool {
	if !isUpgradeRequest(r) {
		w.Header().Set("Upgrade", "websocket")
		http.Error(w, "this endpoint speaks WebSocket only", http.StatusUpgradeRequired)
		return false
	}
	if err := checkOrigin(r, s.cfg.originPatterns); err != nil {
		s.cfg.logger.Debug("wsroom: upgrade refused", "error", err, "remote", r.RemoteAddr)
		http.Error(w, http.StatusText(http.StatusForbidden), http.StatusForbidden)
		return false
	}
	if s.cfg.guard != nil {
		gr, err := s.cfg.guard(r)
		if err != nil {
			s.cfg.logger.Debug("wsroom: guard refused upgrade", "error", err, "remote", r.RemoteAddr)
			refuse(w, err)
			return false
		}
		r = gr
	}
	if !s.admit() {
		w.Header().Set("Retry-After", "5")
		http.Error(w, http.StatusText(http.StatusServiceUnavailable), http.StatusServiceUnavailable)
		return false
	}
	err := s.handshake(w, r, c)
	s.register(c, err == nil)
	return err == nil
}

// admit reserves a place for a connection unless the endpoint is shutting
// down or full.
func (s *server) admit() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutdown || (s.cfg.maxConnections > 0 && len(s.conns)+s.pending >= s.cfg.maxConnections) {
		s.stats.refused.Add(1)
		return false
	}
	s.pending++
	s.wg.Add(1)
	return true
}

// register turns the reservation of a finished handshake into a live
// connection, or frees it when the handshake failed. A connection that
// arrives during Shutdown is closed at once.
func (s *server) register(c *conn, upgraded bool) {
	s.mu.Lock()
	s.pending--
	if !upgraded {
		s.mu.Unlock()
		s.wg.Done()
		return
	}
	s.conns[c] = struct{}{}
	c.parts.Store(2) // the handler and the socket
	shutdown := s.shutdown
	s.mu.Unlock()
	s.stats.accepted.Add(1)
	s.stats.connections.Add(1)
	c.startHeartbeat()
	if shutdown {
		c.closeWith(closedByServer, StatusGoingAway, shutdownReason, afterQueue, nil)
	}
}

// retire forgets c once its handler has returned and its socket is closed.
func (s *server) retire(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.stats.connections.Add(-1)
	s.wg.Done()
}

// handshake hijacks the HTTP connection and completes the WebSocket
// handshake through gws.
func (s *server) handshake(w http.ResponseWriter, r *http.Request, c *conn) error {
	raw, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		err = fmt.Errorf("wsroom: hijack: %w", err)
		s.cfg.logger.Debug("wsroom: handshake failed", "error", err, "remote", r.RemoteAddr)
		http.Error(w, "the connection cannot be upgraded", http.StatusInternalServerError)
		return err
	}
	c.id = lastID.Add(1)
	c.cfg = s.cfg
	c.stats = &s.stats
	c.owner = s
	c.raw = raw
	c.direct = directWriterFor(raw)
	c.flushFn = c.flush
	// The request's context is cancelled when ServeHTTP returns, long
	// before the connection ends: keep its values, not its cancellation.
	c.ctx, c.cancel = context.WithCancelCause(context.WithoutCancel(r.Context()))
	c.req = r.WithContext(c.ctx)
	wr := &wire{Conn: raw, c: c}
	if n := brw.Reader.Buffered(); n > 0 {
		p, _ := brw.Reader.Peek(n)
		wr.pending = append([]byte(nil), p...)
	}
	c.ws, err = s.upgrader.UpgradeFromConn(wr, bufio.NewReaderSize(wr, readBufferSize), r)
	if err != nil {
		// Logged before the socket closes, so the line exists by the time
		// the client sees the end.
		s.cfg.logger.Debug("wsroom: handshake failed", "error", err, "remote", r.RemoteAddr)
		_ = raw.Close()
		c.cancel(err)
		return err
	}
	c.touch()
	return nil
}

const shutdownReason = "server shutting down"

// Shutdown refuses new upgrades, closes every connection with
// StatusGoingAway, and waits until every socket is closed (which happens
// once each handler has returned and its close frame is written) or ctx ends.
func (s *server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shutdown = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.closeWith(closedByServer, StatusGoingAway, shutdownReason, afterQueue, nil)
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// isUpgradeRequest reports whether r asks for a WebSocket upgrade.
func isUpgradeRequest(r *http.Request) bool {
	return r.Method == http.MethodGet &&
		headerHasToken(r.Header, "Connection", "upgrade") &&
		headerHasToken(r.Header, "Upgrade", "websocket")
}

func headerHasToken(h http.Header, key, token string) bool {
	for _, v := range h.Values(key) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// noSession stands in for gws's per-connection session map, which wsroom
// does not use, so no connection pays for one.
type noSession struct{}

func (noSession) Len() int                           { return 0 }
func (noSession) Load(string) (any, bool)            { return nil, false }
func (noSession) Delete(string)                      {}
func (noSession) Store(string, any)                  {}
func (noSession) Range(func(key string, v any) bool) {}
