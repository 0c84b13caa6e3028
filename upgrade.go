package wsroom

import (
	"bufio"
	"fmt"
	"net/http"
	"strings"

	"github.com/lxzan/gws"
)

// netConnBufferSize is the read buffer under gws of a connection read
// through net.Conn (TLS, platforms without direct reads), which holds it
// for its whole life. A message larger than the buffer is read straight
// into its destination, so a small buffer costs large messages nothing;
// small messages that arrive together take a read call per kilobyte.
// (gws's default is 4 KiB.) A socket read directly borrows its buffers
// while bytes are pending and keeps bufio's minimum, 16 bytes (socketInput).
const netConnBufferSize = 1 << 10

// accept runs everything that comes before a connection is made: the
// upgrade request checks, the origin check, the guard, admission and the
// hijack. It answers the request itself and returns false when the
// connection is not to be made; otherwise the caller makes it (newConn)
// and completes the handshake (upgrade).
func (s *server) accept(w http.ResponseWriter, r *http.Request) (connConfig, []byte, bool) {
	if !isUpgradeRequest(r) {
		w.Header().Set("Upgrade", "websocket")
		http.Error(w, "this endpoint speaks WebSocket only", http.StatusUpgradeRequired)
		return connConfig{}, nil, false
	}
	if err := checkOrigin(r, s.cfg.originPatterns); err != nil {
		s.cfg.logger.Debug("wsroom: upgrade refused", "error", err, "remote", r.RemoteAddr)
		http.Error(w, http.StatusText(http.StatusForbidden), http.StatusForbidden)
		return connConfig{}, nil, false
	}
	resume, err := requestedPosition(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return connConfig{}, nil, false
	}
	if s.cfg.guard != nil {
		gr, err := s.cfg.guard(r)
		if err != nil {
			s.cfg.logger.Debug("wsroom: guard refused upgrade", "error", err, "remote", r.RemoteAddr)
			refuse(w, err)
			return connConfig{}, nil, false
		}
		r = gr
	}
	if !s.admit() {
		w.Header().Set("Retry-After", "5")
		http.Error(w, http.StatusText(http.StatusServiceUnavailable), http.StatusServiceUnavailable)
		return connConfig{}, nil, false
	}
	raw, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		s.cfg.logger.Debug("wsroom: handshake failed", "error", fmt.Errorf("wsroom: hijack: %w", err), "remote", r.RemoteAddr)
		http.Error(w, "the connection cannot be upgraded", http.StatusInternalServerError)
		s.register(nil)
		return connConfig{}, nil, false
	}
	// The bytes the HTTP server read past the upgrade request: valid until
	// brw is read again, which it never is.
	pending, _ := brw.Reader.Peek(brw.Reader.Buffered())
	return connConfig{server: s, raw: raw, direct: directWriterFor(raw), req: r, resume: resume}, pending, true
}

// upgrade completes the WebSocket handshake of c through gws and registers
// it. pending are the bytes read past the upgrade request. It reports
// whether c is now open.
func (s *server) upgrade(c *conn, pending []byte) bool {
	c.wire = wire{Conn: c.raw, c: c}
	c.in.init(c.raw, pending)
	size := netConnBufferSize
	if c.in.direct() {
		size = 16 // bufio's minimum: the bytes wait in socketInput's borrowed buffer
	}
	c.br = bufio.NewReaderSize(&c.wire, size)
	upgrader := s.upgrader
	if s.deflating != nil && offersDeflate(c.req.Header) {
		upgrader, c.deflate = s.deflating, true
	}
	ws, err := upgrader.UpgradeFromConn(&c.wire, c.br, c.req)
	if err != nil {
		// Logged before the socket closes, so the line exists by the time
		// the client sees the end.
		s.cfg.logger.Debug("wsroom: handshake failed", "error", err, "remote", c.req.RemoteAddr)
		_ = c.raw.Close()
		c.cancel(err)
		s.register(nil)
		return false
	}
	c.ws = ws
	c.touch()
	s.register(c)
	return true
}

// newUpgrader returns the gws upgrader of an endpoint configured as cfg,
// answering with extension if it is not empty.
func newUpgrader(cfg *config, extension string) *gws.Upgrader {
	opt := &gws.ServerOption{
		ReadMaxPayloadSize: cfg.readLimit, // of the message as sent: an inflated one is bounded in deliver
		ReadBufferSize:     readBufferSize,
		CheckUtf8Enabled:   true,
		HandshakeTimeout:   cfg.handshakeTimeout,
		NewSession:         func() gws.SessionStorage { return noSession{} },
	}
	u := gws.NewUpgrader(events{}, opt)
	if extension != "" {
		// gws writes ResponseHeader into every 101 response. It drops
		// Sec-WebSocket-Extensions from it once, in NewUpgrader, since it
		// negotiates extensions itself when told to; wsroom does instead
		// (compress.go).
		opt.ResponseHeader.Set("Sec-WebSocket-Extensions", extension)
	}
	return u
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
