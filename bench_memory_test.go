//go:build linux

package wsroom_test

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/loadgen"
	"github.com/wsroom/wsroom/internal/wstest"
)

// BenchmarkIdleMemory measures the server's memory per idle connection:
// idleConns real WebSocket connections, from clients in a separate process
// (see loadgen), each joined to one room and then left idle. Four servers
// side by side:
//
//   - wsroom: an Endpoint with default options whose handler subscribes
//     the connection to a room and ranges over its messages (the handler
//     runs in the HTTP server's goroutine for the request);
//   - gws: raw gws with its default options, Upgrade in ServeHTTP, then
//     `go socket.ReadLoop()` as gws's README recommends, the connection
//     kept in a slice under a mutex (the room);
//   - gws-inline: the same, but ReadLoop runs inside ServeHTTP, which keeps
//     net/http's per-connection state alive as a wsroom handler does.
//   - wsroom-deflate: wsroom with WithCompression, every client offering
//     permessage-deflate as browsers do, so every connection negotiates
//     it: what compression costs an idle connection.
//
// Metrics, each the difference between before the clients dial and once
// every connection has joined, after garbage collection and returning free
// memory to the OS, divided by the number of connections:
//
//   - heap-B/conn: live Go heap (MemStats.HeapAlloc);
//   - stack-B/conn: goroutine stacks (MemStats.StackInuse);
//   - rss-B/conn: resident memory of the process (/proc/self/statm).
//
// Socket buffers are kernel memory, in none of these. The descriptors of
// goroutines (runtime.g, a few hundred bytes each) are never freed by the
// Go runtime, so goroutines are created and ended beforehand to leave
// enough of them for reuse: each setup holds one goroutine per idle
// connection, whose descriptor none of the figures include.
//
// One measurement is made per sub-benchmark run (per -count), whatever
// b.N; the framework's further calls to grow b.N report it again, and
// ns/op is not reported. With -short
// it holds 500 connections. Run with -benchtime=1x.
func BenchmarkIdleMemory(b *testing.B) {
	n := idleConnsFor(b)
	for _, impl := range idleHubs {
		b.Run(impl.name, func(b *testing.B) {
			var got *idleMemory
			var gotFor *testing.B
			b.Run(fmt.Sprintf("conns=%d", n), func(b *testing.B) {
				// Measure once per *B: the framework's calls to grow b.N
				// share one, each -count repetition has its own.
				if gotFor != b {
					got, gotFor = measureIdle(b, impl, n), b
				}
				got.report(b)
			})
		})
	}
}

// idleHubs are the servers the idle memory benchmarks compare.
var idleHubs = []idleHub{
	{name: "wsroom", newHub: newWsroomHub},
	{name: "gws", newHub: func(cfg hubConfig) (hub, error) { return newGwsHub(cfg, false) }},
	{name: "gws-inline", newHub: func(cfg hubConfig) (hub, error) { return newGwsHub(cfg, true) }},
	// wsroom with WithCompression, each client offering permessage-deflate
	// as browsers do: every connection negotiates it.
	{name: "wsroom-deflate", newHub: newWsroomHub, compress: true},
}

// idleHub is a server the idle memory benchmarks measure.
type idleHub struct {
	name     string
	newHub   newHubFunc
	compress bool // WithCompression, negotiated with every client
}

// idleConnsFor returns how many idle connections b holds: idleConns, 500
// with -short, fewer if the open file limit is too low.
func idleConnsFor(b *testing.B) int {
	n := idleConns
	if testing.Short() {
		n = 500
	}
	return fitFileLimit(b, n)
}

const idleConns = 5000

type idleMemory struct{ heap, stack, rss float64 }

// report reports m as b's metrics, without ns/op.
func (m *idleMemory) report(b *testing.B) {
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(m.heap, "heap-B/conn")
	b.ReportMetric(m.stack, "stack-B/conn")
	b.ReportMetric(m.rss, "rss-B/conn")
}

func measureIdle(b *testing.B, impl idleHub, n int) *idleMemory {
	cfg, clients := hubConfig{conns: n}, loadgen.Config{Conns: n}
	if impl.compress {
		// Idle clients receive nothing compressed: they need not inflate.
		cfg.options, clients.Deflate = []wsroom.Option{wsroom.WithCompression(0)}, loadgen.OfferDeflateOnly
	}
	s := mustSessionFor(b, impl.newHub, cfg, clients)
	defer closeSession(b, s)
	wstest.ReserveGoroutines(n + 1024)

	settle()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	rss0 := rss(b)

	if err := connect(s.hub, s.proc, n); err != nil {
		b.Fatal(err)
	}

	settle()
	runtime.ReadMemStats(&after)
	rss1 := rss(b)

	if m := s.hub.Members(); m != n {
		b.Fatalf("%d connections in the room, want %d", m, n)
	}
	if err := s.hub.Problems(); err != nil {
		b.Fatal(err)
	}
	select {
	case err := <-s.proc.Errs():
		b.Fatalf("client process: %v", err)
	default:
	}
	perConn := func(a, b uint64) float64 { return (float64(a) - float64(b)) / float64(n) }
	return &idleMemory{
		heap:  perConn(after.HeapAlloc, before.HeapAlloc),
		stack: perConn(after.StackInuse, before.StackInuse),
		rss:   perConn(rss1, rss0),
	}
}

// rss returns the resident set size of this process, in bytes.
func rss(b *testing.B) uint64 {
	n, err := statmRSS("/proc/self/statm")
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// statmRSS reads the resident set size, in bytes, from a statm file of
// /proc (the figure VmRSS in the status file gives in KiB).
func statmRSS(path string) (uint64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(data))
	if len(f) < 2 {
		return 0, fmt.Errorf("%s: %q", path, data)
	}
	pages, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return pages * uint64(os.Getpagesize()), nil
}

// fitFileLimit raises this process's limit on open files, up to the hard
// limit, to hold n connections (the client process, a Go program too,
// raises its own), and returns n, or fewer if the hard limit is too low.
func fitFileLimit(b *testing.B, n int) int {
	const spare = 256 // listeners, pipes, the test binary's own files
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatal(err)
	}
	if lim.Cur < uint64(n+spare) && lim.Cur < lim.Max {
		lim.Cur = min(lim.Max, uint64(n+spare))
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			b.Fatal(err)
		}
	}
	if lim.Cur < uint64(n+spare) {
		fewer := int(lim.Cur) - spare
		if fewer < 100 {
			b.Skipf("open file limit %d: too low for an idle memory measurement", lim.Cur)
		}
		b.Logf("open file limit %d: measuring %d connections instead of %d", lim.Cur, fewer, n)
		return fewer
	}
	return n
}
