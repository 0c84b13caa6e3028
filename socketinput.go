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

// take copies pending bytes into p; with none pending it returns the read
// error. A drained buffer stays for the next read, which gives it back if
// the socket has nothing more: the pool is visited once per idle spell,
// not once per read.
func (in *socketInput) take(p []byte) (int, error) {
	if in.r == in.w {
		return 0, in.err
	}
	n := copy(p, (*in.buf)[in.r:in.w])
	in.skip(n)
	return n, nil
}

// skip drops n pending bytes.
func (in *socketInput) skip(n int) {
	in.r += n
	if in.r == in.w {
		in.r, in.w = 0, 0
	}
}

// pending returns the bytes read and not yet taken.
func (in *socketInput) pending() []byte {
	if in.buf == nil {
		return nil
	}
	return (*in.buf)[in.r:in.w]
}

// pend makes p, the bytes the HTTP server read past the upgrade request,
// the first to be taken.
func (in *socketInput) pend(p []byte) {
	if len(p) == 0 {
		return
	}
	buf := readBuffers.Get().(*[]byte)
	if len(p) > len(*buf) { // never with net/http's 4 KiB reader; kept exact if so
		readBuffers.Put(buf)
		b := make([]byte, len(p))
		buf = &b
	}
	in.buf, in.r, in.w = buf, 0, copy(*buf, p)
}

// fill waits until the socket has more bytes, or an error, for the next
// take.
func (in *socketInput) fill() {
	if err := in.src.Read(in.readFn); err != nil && in.err == nil {
		in.err = err // the wait was interrupted: a deadline, or the socket closed
	}
}

// space returns where the next read goes: after the bytes pending, in the
// drained buffer or a new loan, moved to its start if the end is reached.
func (in *socketInput) space() []byte {
	if in.buf == nil {
		in.buf = readBuffers.Get().(*[]byte)
	}
	b := *in.buf
	if in.w == len(b) {
		in.w = copy(b, b[in.r:in.w])
		in.r = 0
	}
	return b[in.w:]
}

// gave records the n bytes a read into space gave.
func (in *socketInput) gave(n int) { in.w += n }

// dry is a read that found nothing: a drained buffer goes back before the
// wait.
func (in *socketInput) dry() {
	if in.r == in.w {
		in.release()
	}
}

// failed is a read that ended in err: a drained buffer goes back, as on
// a dry read, and err is taken once the pending bytes are.
func (in *socketInput) failed(err error) {
	in.dry()
	in.err = err
}

// release gives the buffer back.
func (in *socketInput) release() {
	if in.buf != nil && cap(*in.buf) == readBufferSize {
		readBuffers.Put(in.buf)
	}
	in.buf = nil
}
