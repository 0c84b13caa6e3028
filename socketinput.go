package wsroom

import (
	"sync"
	"syscall"
)

// socketInput is a connection's read side below gws: the bytes read from the
// socket and not yet taken by gws's reader. They sit in a buffer borrowed
// from readBuffers only while some are pending, and the wait for the
// socket to become readable holds no buffer, so an idle connection holds
// no read buffer at all: gws's own bufio.Reader on top is the minimum, 16
// bytes. Guarded by the connection's readMu.
type socketInput struct {
	src    syscall.RawConn    // nil: read through net.Conn (TLS, other platforms)
	readFn func(uintptr) bool // readFd, bound once: a read allocates nothing
	buf    *[]byte            // borrowed (or pend's); nil while nothing is pending
	r, w   int                // the pending bytes are buf[r:w]
	err    error              // the read error, reported once the pending bytes are taken
}

// readBufferSize is the size of the buffers a socketInput borrows: one read
// takes up to this much of what the peer sent, and a read for a larger
// destination goes straight into it.
const readBufferSize = 4 << 10

var readBuffers = sync.Pool{New: func() any {
	b := make([]byte, readBufferSize)
	return &b
}}

// direct reports whether reads borrow their buffer: false on sockets read
// through net.Conn, which keep a buffer of their own under gws (see
// upgrade).
func (in *socketInput) direct() bool { return in.src != nil }

// ready reports whether a read would not wait: bytes or an error pending.
func (in *socketInput) ready() bool { return in.r < in.w || in.err != nil }

// take copies pending bytes into p, and gives the buffer back once they
// are all taken; with none pending it returns the read error.
func (in *socketInput) take(p []byte) (int, error) {
	if in.r == in.w {
		return 0, in.err
	}
	n := copy(p, (*in.buf)[in.r:in.w])
	in.r += n
	if in.r == in.w {
		if cap(*in.buf) == readBufferSize { // not pend's
			readBuffers.Put(in.buf)
		}
		in.buf, in.r, in.w = nil, 0, 0
	}
	return n, nil
}

// pend makes p, the bytes the HTTP server read past the upgrade request,
// the first to be taken.
func (in *socketInput) pend(p []byte) {
	if len(p) > 0 {
		in.buf, in.r, in.w = &p, 0, len(p)
	}
}

// fill waits until the socket has bytes or an error for the next take.
func (in *socketInput) fill() {
	if err := in.src.Read(in.readFn); err != nil && in.err == nil {
		in.err = err // the wait was interrupted: a deadline, or the socket closed
	}
}

// gave is what one read gave: n bytes into buf, or err.
func (in *socketInput) gave(buf *[]byte, n int, err error) {
	if n > 0 {
		in.buf, in.r, in.w = buf, 0, n
		return
	}
	readBuffers.Put(buf)
	in.err = err
}
