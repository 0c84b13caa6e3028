//go:build linux

package wsroom_test

import (
	"flag"
	"fmt"
	"testing"
	"time"

	"github.com/wsroom/wsroom/internal/wstest"
)

// BenchmarkPeers measures wsroom beside raw gws and Bun (uWebSockets, see
// bunHub) on the chat contract (see bench_hubs_test.go), scenario by
// scenario, the three servers one after another within each scenario, so
// that the ratios come from one run. The clients are the same separate
// process for all three (see loadgen); the server's CPU time is read
// from its own process (getrusage for wsroom's and gws's, which run in
// this one; /proc/<pid>/stat for Bun's, to 10 ms) and so is its memory.
//
//   - fanout: one room of N members, the benchmark's publisher keeping 64
//     messages in flight. cpu-ns/delivery, deliveries/s, p50 and p99
//     publish-to-receive.
//   - inflight: the same with one message in flight.
//   - chatty: rooms of 10, every member sending (4 of its own messages
//     unanswered at a time), each message checked by the server and
//     delivered to the 10 members. cpu-ns/delivery, deliveries/s, p99.
//   - idle: connections joined to a room and left idle. rss-B/conn, the
//     server's resident memory after garbage collection, from before
//     they dial to once they have joined.
//   - joinstorm: one room of N, everyone joining and each join announced
//     to the room (N(N+1)/2 deliveries), then 1,000,000 deliveries of
//     messages. connect-s (dialling until every announcement has been
//     received), cpu-s (server CPU over all of it) and total-s. wsroom
//     and Bun only: raw gws, one write per frame, takes 46 s at N=2,000
//     and minutes at 5,000.
//
// Without -peers.full the sizes are small (CI runs it so); with it, the
// sizes of issue 15's table: run with -benchtime=1x. Each measurement is
// made once per sub-benchmark run (per -count), whatever b.N. It fails if
// a delivery is missing or out of order, a join is not its joiner's first
// frame, or a server refuses or loses anything. Bun's runs skip when Bun
// is not installed (`npm ci` in internal/bunpeer), and fail under
// WSROOM_CI.
func BenchmarkPeers(b *testing.B) {
	sz := smallPeerSizes
	if *peersFull {
		sz = fullPeerSizes
	}
	scenario(b, fmt.Sprintf("fanout/N=%d", sz.fanout), allPeers, func(b *testing.B, h newHubFunc) []metric {
		return measureFanout(b, h, sz.fanout, sz.fanoutMessages, 64)
	})
	scenario(b, fmt.Sprintf("inflight/N=%d", sz.fanout), allPeers, func(b *testing.B, h newHubFunc) []metric {
		return measureFanout(b, h, sz.fanout, sz.inflightMessages, 1)
	})
	scenario(b, fmt.Sprintf("chatty/rooms=%dx%d", sz.chattyRooms, chattySize), allPeers, func(b *testing.B, h newHubFunc) []metric {
		return measureChatty(b, h, sz.chattyRooms, sz.chattyMessages)
	})
	scenario(b, fmt.Sprintf("idle/conns=%d", sz.idle), allPeers, func(b *testing.B, h newHubFunc) []metric {
		return measureIdleRSS(b, h, sz.idle)
	})
	for _, n := range sz.storm {
		scenario(b, fmt.Sprintf("joinstorm/N=%d", n), []peer{wsroomPeer, bunPeer}, func(b *testing.B, h newHubFunc) []metric {
			return measureJoinStorm(b, h, n, sz.stormDeliveries)
		})
	}
}

var peersFull = flag.Bool("peers.full", false, "BenchmarkPeers: the sizes of issue 15's table (minutes), not CI's (seconds)")

// peerSizes are BenchmarkPeers' sizes.
type peerSizes struct {
	fanout           int // members of the fanout and inflight room
	fanoutMessages   int
	inflightMessages int
	chattyRooms      int
	chattyMessages   int // sent by each member
	idle             int // connections
	storm            []int
	stormDeliveries  int // of messages, after the joins
}

var (
	fullPeerSizes = peerSizes{
		fanout: 500, fanoutMessages: 2000, inflightMessages: 400,
		chattyRooms: 50, chattyMessages: 100,
		idle:  idleConns,
		storm: []int{2000, 5000}, stormDeliveries: 1_000_000,
	}
	smallPeerSizes = peerSizes{
		fanout: 100, fanoutMessages: 200, inflightMessages: 50,
		chattyRooms: 5, chattyMessages: 20,
		idle:  500,
		storm: []int{200}, stormDeliveries: 20_000,
	}
)

const (
	chattySize   = 10 // members per room, each a sender
	chattyWindow = 4  // a sender's messages unanswered at a time
	stormWindow  = 64 // messages in flight after a join storm
	stormTimeout = 5 * time.Minute
)

// metric is one figure a measurement reports.
type metric struct {
	value float64
	unit  string
}

// peer is one of the servers BenchmarkPeers compares.
type peer struct {
	name   string
	newHub newHubFunc
	check  func(testing.TB) // skips or fails when the server cannot run here
}

var (
	wsroomPeer = peer{"wsroom", newWsroomHub, nil}
	gwsPeer    = peer{"gws", func(cfg hubConfig) (hub, error) { return newGwsHub(cfg, false) }, nil}
	bunPeer    = peer{"bun", newBunHub, requireBun}
	allPeers   = []peer{wsroomPeer, gwsPeer, bunPeer}
)

// scenario runs measure for each of peers, one sub-benchmark each, and
// reports what it measured.
func scenario(b *testing.B, name string, peers []peer, measure func(*testing.B, newHubFunc) []metric) {
	b.Run(name, func(b *testing.B) {
		for _, p := range peers {
			var got []metric
			var gotFor *testing.B
			b.Run(p.name, func(b *testing.B) {
				if p.check != nil {
					p.check(b)
				}
				// Measure once per *B: the framework's calls to grow b.N
				// share one, each -count repetition has its own.
				if gotFor != b {
					got, gotFor = measure(b, p.newHub), b
				}
				b.ReportMetric(0, "ns/op")
				for _, m := range got {
					b.ReportMetric(m.value, m.unit)
				}
			})
		}
	})
}

// measureFanout publishes messages to one room of n members, window of
// them in flight, after a warm-up.
func measureFanout(b *testing.B, newHub newHubFunc, n, messages, window int) []metric {
	s := mustSession(b, newHub, n, 1, false)
	defer closeSession(b, s)
	if err := connect(s.hub, s.proc, n); err != nil {
		b.Fatal(err)
	}
	fx := &fanout{session: s}
	fx.publish(b, fanoutWarmup, window)
	if err := s.proc.Reset(setupTimeout); err != nil {
		b.Fatal(err)
	}
	must(b, s.hub.Settle())
	cpu0, t0 := serverCPU(b, s.hub), time.Now()
	fx.publish(b, messages, window)
	elapsed, cpu := time.Since(t0), serverCPU(b, s.hub)-cpu0
	return deliveryMetrics(b, s, int64(messages)*int64(n), elapsed, cpu)
}

// measureChatty has every member of rooms rooms of chattySize send
// messages to its room, after a warm-up.
func measureChatty(b *testing.B, newHub newHubFunc, rooms, messages int) []metric {
	n := rooms * chattySize
	s := mustSession(b, newHub, n, rooms, false)
	defer closeSession(b, s)
	if err := connect(s.hub, s.proc, n); err != nil {
		b.Fatal(err)
	}
	must(b, s.proc.Chat(5, chattyWindow, setupTimeout))
	must(b, s.proc.Reset(setupTimeout))
	must(b, s.hub.Settle())
	cpu0, t0 := serverCPU(b, s.hub), time.Now()
	must(b, s.proc.Chat(messages, chattyWindow, setupTimeout))
	elapsed, cpu := time.Since(t0), serverCPU(b, s.hub)-cpu0
	return deliveryMetrics(b, s, int64(n)*chattySize*int64(messages), elapsed, cpu)
}

// deliveryMetrics checks that the clients received deliveries messages
// since the last Reset and the server had no problem, and returns the
// figures of a delivery benchmark.
func deliveryMetrics(b *testing.B, s *session, deliveries int64, elapsed, cpu time.Duration) []metric {
	rep, err := s.proc.Report(setupTimeout)
	if err != nil {
		b.Fatal(err)
	}
	if got := rep.Latency.Count(); got != deliveries {
		b.Fatalf("the clients recorded %d deliveries, want %d", got, deliveries)
	}
	must(b, s.hub.Problems())
	return []metric{
		{float64(cpu.Nanoseconds()) / float64(deliveries), "cpu-ns/delivery"},
		{float64(deliveries) / elapsed.Seconds(), "deliveries/s"},
		{float64(rep.CPU.Nanoseconds()) / float64(deliveries), "client-cpu-ns/delivery"},
		{float64(rep.Latency.Quantile(0.50).Nanoseconds()) / 1e3, "p50-µs"},
		{float64(rep.Latency.Quantile(0.99).Nanoseconds()) / 1e3, "p99-µs"},
	}
}

// measureIdleRSS returns the server's resident memory per connection, n
// connections joined to a room and idle.
func measureIdleRSS(b *testing.B, newHub newHubFunc, n int) []metric {
	n = fitFileLimit(b, n)
	s := mustSession(b, newHub, n, 1, false)
	defer closeSession(b, s)
	wstest.ReserveGoroutines(n + 1024) // see BenchmarkIdleMemory; nothing to Bun's process
	must(b, s.hub.Settle())
	rss0, err := s.hub.RSS()
	must(b, err)
	if err := connect(s.hub, s.proc, n); err != nil {
		b.Fatal(err)
	}
	must(b, s.hub.Settle())
	rss1, err := s.hub.RSS()
	must(b, err)
	if m := s.hub.Members(); m != n {
		b.Fatalf("%d connections in the room, want %d", m, n)
	}
	must(b, s.hub.Problems())
	return []metric{{(float64(rss1) - float64(rss0)) / float64(n), "rss-B/conn"}}
}

// measureJoinStorm has n members join one room, each join announced, then
// publishes messages until deliveries more deliveries have been made.
func measureJoinStorm(b *testing.B, newHub newHubFunc, n, deliveries int) []metric {
	n = fitFileLimit(b, n)
	s := mustSession(b, newHub, n, 1, true)
	defer closeSession(b, s)
	cpu0, t0 := serverCPU(b, s.hub), time.Now()
	if err := connectWithin(s.hub, s.proc, n, stormTimeout); err != nil {
		b.Fatal(err)
	}
	connected := time.Since(t0)
	fx := &fanout{session: s}
	fx.publish(b, max(deliveries/n, 1), stormWindow)
	total, cpu := time.Since(t0), serverCPU(b, s.hub)-cpu0
	must(b, s.hub.Problems())
	return []metric{
		{connected.Seconds(), "connect-s"},
		{cpu.Seconds(), "cpu-s"},
		{total.Seconds(), "total-s"},
	}
}

func serverCPU(b *testing.B, s server) time.Duration {
	d, err := s.CPU()
	must(b, err)
	return d
}

func must(b *testing.B, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
}
