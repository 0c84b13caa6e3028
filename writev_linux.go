package wsroom

import (
	"net"
	"syscall"
	"unsafe"
)

// iovecs are the buffers of one writev.
type iovecs = []syscall.Iovec

func newIovecs() iovecs { return make(iovecs, 0, maxIovecs) }

// rawWriter writes to a socket's file descriptor with writev, without
// waiting for it to become writable.
type rawWriter struct{ rc syscall.RawConn }

// directWriterFor returns the non-blocking writer of a TCP or Unix socket,
// or nil (TLS connections encrypt in Go: they keep blocking writes).
func directWriterFor(c net.Conn) directWriter {
	var sc syscall.Conn
	switch c := c.(type) {
	case *net.TCPConn:
		sc = c
	case *net.UnixConn:
		sc = c
	default:
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rawWriter{rc}
}

func (d rawWriter) writev(w *worker, l *frameList) (frames, bytes int, err error) {
	for {
		w.iov = w.iov[:0]
		want := 0
		for f := range l.all {
			if len(w.iov) == maxIovecs {
				break
			}
			v := syscall.Iovec{Base: &f[0]}
			v.SetLen(len(f))
			w.iov = append(w.iov, v)
			want += len(f)
		}
		if want == 0 {
			return frames, bytes, nil
		}
		var written uintptr
		var errno syscall.Errno
		err := d.rc.Write(func(fd uintptr) bool {
			for {
				written, _, errno = syscall.Syscall(syscall.SYS_WRITEV, fd,
					uintptr(unsafe.Pointer(&w.iov[0])), uintptr(len(w.iov)))
				if errno != syscall.EINTR {
					return true // done, even if the socket is full: never wait here
				}
			}
		})
		clear(w.iov) // drop the references to the frames
		switch {
		case err != nil:
			return frames, bytes, err
		case errno == syscall.EAGAIN:
			return frames, bytes, nil
		case errno != 0:
			return frames, bytes, errno
		}
		frames += l.consume(int(written))
		bytes += int(written)
		if int(written) < want {
			return frames, bytes, nil // the socket is full
		}
	}
}
