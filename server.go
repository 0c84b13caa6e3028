package wsroom

import (
	"context"
	"sync"

	"github.com/lxzan/gws"
)

// server is the part of an endpoint that does not depend on In or Out: the
// upgrade, the set of live connections, shutdown and stats.
type server struct {
	cfg       *config
	upgrader  *gws.Upgrader
	deflating *gws.Upgrader // answers with permessage-deflate; nil without WithCompression
	stats     counters
	writers   *writers

	mu       sync.Mutex
	conns    map[*conn]struct{} // upgraded, with a handler running or a socket open
	pending  int                // admitted, handshake under way
	shutdown bool
	beats    heartbeat      // pings every connection, while there are any
	wg       sync.WaitGroup // one count per admitted connection, until retired
}

func newServer(cfg *config) *server {
	s := &server{
		cfg:      cfg,
		conns:    make(map[*conn]struct{}),
		writers:  newWriters(),
		upgrader: newUpgrader(cfg, ""),
	}
	if cfg.compress {
		s.deflating = newUpgrader(cfg, deflateResponse)
	}
	return s
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
// connection, or frees it when c is nil: the handshake failed. A
// connection that arrives during Shutdown is closed at once.
func (s *server) register(c *conn) {
	s.mu.Lock()
	s.pending--
	if c == nil {
		s.mu.Unlock()
		s.wg.Done()
		return
	}
	s.conns[c] = struct{}{}
	c.parts.Store(2) // the handler and the socket
	shutdown := s.shutdown
	s.armHeartbeat()
	s.mu.Unlock()
	s.stats.accepted.Add(1)
	s.stats.connections.Add(1)
	if shutdown {
		c.closeGoingAway()
	}
}

// retire forgets c once its handler has returned and its socket is closed.
func (s *server) retire(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.disarmHeartbeat()
	s.mu.Unlock()
	s.stats.connections.Add(-1)
	s.wg.Done()
}

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
		c.closeGoingAway()
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

// noSession stands in for gws's per-connection session map, which wsroom
// does not use, so no connection pays for one.
type noSession struct{}

func (noSession) Len() int                           { return 0 }
func (noSession) Load(string) (any, bool)            { return nil, false }
func (noSession) Delete(string)                      {}
func (noSession) Store(string, any)                  {}
func (noSession) Range(func(key string, v any) bool) {}
