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
	var sc syscall.Conn
	switch c := c.(type) {
	case *net.TCPConn:
		sc = c
	case *net.UnixConn:
		sc = c
	default:
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	in.src, in.readFn = rc, in.readFd
}

// readFd reads the socket fd into a borrowed buffer, which goes back at
// once if there is nothing to read: the wait that follows holds none.
func (in *socketInput) readFd(fd uintptr) bool {
	buf := readBuffers.Get().(*[]byte)
	for {
		n, err := syscall.Read(int(fd), *buf)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			readBuffers.Put(buf)
			return false
		case err != nil:
			in.gave(buf, 0, os.NewSyscallError("read", err))
		case n == 0:
			in.gave(buf, 0, io.EOF)
		default:
			in.gave(buf, n, nil)
		}
		return true
	}
}
