package wsroom

import "net"

// wire is the net.Conn gws reads from and writes to. It routes gws's writes
// (the upgrade response, and close frames it sends on protocol errors or in
// reply to the peer's close) through the connection's write lock, reads
// through the connection's socketInput, and stops reads once the
// connection is closing so the handler's range ends.
type wire struct {
	net.Conn
	c *conn
}

func (w *wire) Read(p []byte) (int, error) {
	c := w.c
	c.readMu.Lock()
	defer c.readMu.Unlock()
	if c.closing.Load() {
		return 0, net.ErrClosed
	}
	in := &c.in
	if !in.ready() {
		if !in.direct() || len(p) >= readBufferSize {
			in.release() // the read goes straight into p: no buffer held while it waits
			n, err := w.Conn.Read(p)
			if c.closing.Load() {
				return 0, net.ErrClosed
			}
			return n, err
		}
		in.fill()
		if c.closing.Load() {
			return 0, net.ErrClosed
		}
	}
	return in.take(p)
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
