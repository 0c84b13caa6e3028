//go:build !linux

package wsroom

import "net"

// worker is a writer goroutine's scratch space: none off Linux.
type worker struct{ batch frameList }

func newWorker() *worker { return new(worker) }

// directWriterFor returns nil off Linux: connections there write from
// flushers of their own, with blocking calls.
func directWriterFor(net.Conn) directWriter { return nil }
