package wsroom

import (
	"net"
	"syscall"
	"unsafe"
)

// iovecs are the buffers of one writev and what the call returned. They
// live in a pooled worker, and their write is bound once: the flush path
// hands the socket a function that captures nothing new, so it allocates
// nothing (a closure over the results escaped through syscall.RawConn on
// every call, most of the objects a fan-out allocated).
type iovecs = *iovecBatch

// iovecBatch is the state of one writev: the buffers, the bytes written
// and the error number.
type iovecBatch struct {
	vec     []syscall.Iovec
	written uintptr
	errno   syscall.Errno
	write   func(fd uintptr) bool // b.writev, bound once
}

func newIovecs() iovecs {
	b := &iovecBatch{vec: make([]syscall.Iovec, 0, maxIovecs)}
	b.write = b.writev
	return b
}

// writev writes b.vec to fd once, retrying only an interrupted call, and
// records the outcome. It returns true, as syscall.RawConn.Write wants of a
// call that is done even when the socket is full: it never waits.
func (b *iovecBatch) writev(fd uintptr) bool {
	for {
		b.written, _, b.errno = syscall.Syscall(syscall.SYS_WRITEV, fd,
			uintptr(unsafe.Pointer(&b.vec[0])), uintptr(len(b.vec)))
		if b.errno != syscall.EINTR {
			return true
		}
	}
}

// rawWriter writes to a socket's file descriptor with writev, without
// waiting for it to become writable.
type rawWriter struct{ rc syscall.RawConn }

// directWriterFor returns the non-blocking writer of a TCP or Unix socket,
// or nil (TLS connections encrypt in Go: they keep blocking writes).
func directWriterFor(c net.Conn) directWriter {
	rc := rawConnOf(c)
	if rc == nil {
		return nil
	}
	return rawWriter{rc}
}

// rawConnOf returns the file descriptor access of a TCP or Unix socket,
// or nil for any other connection (TLS encrypts and decrypts in Go).
func rawConnOf(c net.Conn) syscall.RawConn {
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
	return rc
}

func (d rawWriter) writev(w *worker, l *frameList) (frames, bytes int, err error) {
	b := w.iov
	for {
		b.vec = b.vec[:0]
		want := 0
		for f := range l.all {
			if len(b.vec) == maxIovecs {
				break
			}
			v := syscall.Iovec{Base: &f[0]}
			v.SetLen(len(f))
			b.vec = append(b.vec, v)
			want += len(f)
		}
		if want == 0 {
			return frames, bytes, nil
		}
		err := d.rc.Write(b.write)
		clear(b.vec) // drop the references to the frames
		switch {
		case err != nil:
			return frames, bytes, err
		case b.errno == syscall.EAGAIN:
			return frames, bytes, nil
		case b.errno != 0:
			return frames, bytes, b.errno
		}
		frames += l.consume(int(b.written))
		bytes += int(b.written)
		if int(b.written) < want {
			return frames, bytes, nil // the socket is full
		}
	}
}
