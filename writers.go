package wsroom

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// writers is an endpoint's pool of writer goroutines. Connections with
// frames to write are pushed on a lock-free list; up to max workers take the
// whole list at a time and give each connection one non-blocking write.
// Workers start when work arrives and exit when there is none, so an idle
// endpoint runs no goroutine.
type writers struct {
	head   atomic.Pointer[conn] // connections to write, newest first
	active atomic.Int32         // running workers
	max    int32
	workFn func() // ws.work, bound once: a go statement on it allocates nothing
}

func newWriters() *writers {
	ws := &writers{max: int32(runtime.GOMAXPROCS(0))}
	ws.workFn = ws.work
	return ws
}

// push schedules c, which must not be on the list already (c.scheduled
// guards that), and makes sure a worker will take it.
func (ws *writers) push(c *conn) {
	for {
		old := ws.head.Load()
		c.next = old
		if ws.head.CompareAndSwap(old, c) {
			break
		}
	}
	if ws.active.Load() < ws.max {
		if ws.active.Add(1) <= ws.max {
			go ws.workFn()
		} else {
			ws.active.Add(-1)
		}
	}
}

// work takes the list until it stays empty. A push that sees every worker
// busy does not start one: the check after the decrement below makes sure
// such a push is never stranded.
func (ws *writers) work() {
	w := workerPool.Get().(*worker)
	defer workerPool.Put(w)
	for {
		list := ws.head.Swap(nil)
		if list == nil {
			ws.active.Add(-1)
			if ws.head.Load() == nil {
				return
			}
			if ws.active.Add(1) > ws.max {
				ws.active.Add(-1)
				return
			}
			continue
		}
		for c := list; c != nil; {
			next := c.next
			c.next = nil
			c.writeSome(w)
			c = next
		}
	}
}

// worker is a writer goroutine's scratch space, pooled across workers: the
// batch it is writing and, where writev is direct, its iovecs.
type worker struct {
	batch frameList
	iov   iovecs
}

// maxIovecs is the most buffers one writev takes (IOV_MAX on Linux), and
// bounds the batch a flusher keeps for reuse.
const maxIovecs = 1024

var workerPool = sync.Pool{New: func() any { return &worker{iov: newIovecs()} }}

// directWriter writes without blocking: it writes as much of the list as
// the socket takes at once, consumes it from the list, and returns how many
// frames were completed and bytes written.
type directWriter interface {
	writev(w *worker, l *frameList) (frames, bytes int, err error)
}
