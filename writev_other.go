//go:build !linux

package wsroom

import "net"

// iovecs are none off Linux: there is no direct writev.
type iovecs = struct{}

func newIovecs() iovecs { return iovecs{} }

// directWriterFor returns nil off Linux: connections there write from
// flushers of their own, with blocking calls.
func directWriterFor(net.Conn) directWriter { return nil }
