package wsroom

import (
	"context"
	"iter"
	"log/slog"
	"net/http/httptest"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsroom/wsroom/internal/loadgen"
	"github.com/wsroom/wsroom/internal/wstest"
)

// idleMsg is the inbound type of the idle connections below (they send none).
type idleMsg struct {
	Type string `json:"type"`
}

// TestIdleConnectionsParkOnTheSmallestStackAndHoldNoReadBuffer holds
// connections from clients in a separate process, each ranging over its
// stream, with the heartbeat running, and checks what an idle connection
// costs the server once every connection has answered a ping: a stack of
// the Go minimum (2 KiB: it would be 4 KiB if the wait for the socket, or
// the reading of a pong, used more than about 1.1 KiB of it), and a heap
// within budget (a read buffer held while idle would break it: 4 KiB).
// With compression negotiated on every connection, the budgets are the
// same: no compressor or inflater is held between messages.
func TestIdleConnectionsParkOnTheSmallestStackAndHoldNoReadBuffer(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes frame sizes and allocations: run without -race (go test -short runs it)")
	}
	t.Run("plain", func(t *testing.T) { testIdleConnections(t, false) })
	t.Run("deflate", func(t *testing.T) { testIdleConnections(t, true) })
}

func testIdleConnections(t *testing.T, compress bool) {
	const (
		n           = 400
		stackBudget = 3072 // per connection: 2 KiB stacks and room for noise; with 4 KiB ones it is past 4 KiB
		heapBudget  = 4096
		timeout     = 60 * time.Second
	)
	opts := []Option{WithHeartbeat(300*time.Millisecond, time.Minute), WithLogger(slog.New(slog.DiscardHandler))}
	offer := loadgen.NoDeflate
	if compress {
		opts = append(opts, WithCompression(0))
		offer = loadgen.OfferDeflateOnly // idle: nothing compressed comes to inflate
	}
	ep := New(func(c *Conn[idleMsg], msgs iter.Seq2[idleMsg, error]) error {
		for _, err := range msgs {
			if err != nil {
				return err
			}
		}
		return nil
	}, opts...)
	srv := httptest.NewServer(ep)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if err := ep.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		srv.Close()
	}()
	proc, err := loadgen.Start(loadgen.Config{URL: "ws" + strings.TrimPrefix(srv.URL, "http"), Conns: n, Deflate: offer})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := proc.Close(timeout); err != nil {
			t.Errorf("client process: %v", err)
		}
	}()
	// Go starts a goroutine on a stack the size of the average stack the
	// last collection scanned (GODEBUG adaptivestackstart): while
	// connections are being upgraded, net/http's goroutines, deep in the
	// request, can raise it to 4 KiB for the handlers started then. Many
	// parked goroutines of a few frames, alive across both snapshots, keep
	// it at the minimum, so that what is measured is how deep the
	// connections' goroutines go, not when they were started.
	release := ballast(4 * n)
	defer release()
	wstest.ReserveGoroutines(2*n + 256) // after the ballast, which would take them

	before := idleSnapshot()
	if err := proc.Dial(timeout); err != nil {
		t.Fatal(err)
	}
	wstest.WaitWithin(t, timeout, "every connection open", func() bool { return ep.Stats().Connections == n })
	mark := nanotime()
	wstest.WaitWithin(t, timeout, "a pong from every connection", func() bool {
		ep.srv.mu.Lock()
		defer ep.srv.mu.Unlock()
		for c := range ep.srv.conns {
			if c.lastSeen.Load() <= mark { // nothing but a pong touches it: the clients send nothing
				return false
			}
			if c.deflate != compress {
				t.Fatalf("a connection negotiated compression: %v, want %v", c.deflate, compress)
			}
		}
		return true
	})
	after := idleSnapshot()
	if st := ep.Stats(); st.Connections != n || st.Accepted != n {
		t.Fatalf("%d connections open, %d accepted, want %d", st.Connections, st.Accepted, n)
	}

	stack := float64(after.StackInuse-before.StackInuse) / n
	heap := (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / n
	t.Logf("per idle connection: stack %.0f B, heap %.0f B", stack, heap)
	if stack > stackBudget {
		t.Errorf("stack %.0f B per idle connection, want at most %d: handler goroutines parked on grown stacks", stack, stackBudget)
	}
	if heap > heapBudget {
		t.Errorf("heap %.0f B per idle connection, want at most %d", heap, heapBudget)
	}
}

// idleSnapshot returns the memory statistics after a full collection.
func idleSnapshot() runtime.MemStats {
	runtime.GC()
	debug.FreeOSMemory()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m
}

// ballast starts k goroutines parked on a stack of a few frames, until the
// returned function is called.
func ballast(k int) (release func()) {
	var started sync.WaitGroup
	done := make(chan struct{})
	started.Add(k)
	for range k {
		go func() {
			started.Done()
			<-done
		}()
	}
	started.Wait()
	return func() { close(done) }
}
