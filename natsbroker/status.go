package natsbroker

import (
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"
)

// statusWatch keeps the connection's status where Publish can read it
// without nats.go's connection lock, which nats.go holds while it dials
// and handshakes during a reconnect attempt (up to the connection's
// Timeout, 2 s by default, against a server that accepts and does not
// answer): a publish during an outage must fail at once, not wait for
// that. The status is read with nc.Status after every change nats.go
// reports, so a change event that nats.go drops (its channel is bounded)
// cannot leave it stale.
type statusWatch struct {
	status atomic.Int32 // a nats.Status
	stop   chan struct{}
	done   sync.WaitGroup
}

// start begins watching nc; reconnected is called, on the watcher, each
// time the connection is connected again after it was not.
func (w *statusWatch) start(nc *nats.Conn, reconnected func()) {
	changed := nc.StatusChanged()
	w.status.Store(int32(nc.Status()))
	w.stop = make(chan struct{})
	w.done.Add(1)
	go func() {
		defer w.done.Done()
		for {
			select {
			case <-changed:
				st := nc.Status()
				if old := nats.Status(w.status.Swap(int32(st))); st == nats.CONNECTED && old != nats.CONNECTED {
					reconnected()
				}
				if st == nats.CLOSED {
					return
				}
			case <-w.stop:
				nc.RemoveStatusListener(changed)
				return
			}
		}
	}()
}

// current returns the connection's status as last seen.
func (w *statusWatch) current() nats.Status { return nats.Status(w.status.Load()) }

// end stops watching and waits for the watcher to return.
func (w *statusWatch) end() {
	close(w.stop)
	w.done.Wait()
}
