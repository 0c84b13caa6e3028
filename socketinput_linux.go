package wsroom

import (
	"io"
	"net"
	"os"
	"syscall"
)

// init sets in up to read c, pending first: a TCP or Unix socket is read
// into borrowed buffers; any other connection (TLS decrypts in Go) through
// net.Conn.
func (in *socketInput) init(c net.Conn, pending []byte) {
	in.pend(pending)
	if rc := rawConnOf(c); rc != nil {
		in.src, in.readFn = rc, in.readFd
	}
}

// readFd reads the socket fd after the pending bytes. A drained buffer
// goes back if there is nothing to read: the wait that follows holds none.
func (in *socketInput) readFd(fd uintptr) bool {
	buf := in.space()
	for {
		n, err := syscall.Read(int(fd), buf)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			in.dry()
			return false
		case err != nil:
			in.failed(os.NewSyscallError("read", err))
		case n == 0:
			in.failed(io.EOF)
		default:
			in.gave(n)
		}
		return true
	}
}
