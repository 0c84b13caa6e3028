//go:build linux

package wsroom_test

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wsroom/wsroom/internal/loadgen"
)

// BenchmarkFanout measures fan-out end to end, over real loopback sockets:
// one room, N real WebSocket clients in a separate process (see loadgen),
// and one publisher that keeps -fanout.window messages (default 16) in
// flight, a message counting as delivered once every client has it (the
// publisher publishes the next one as one completes). b.N is the
// number of messages published, each one N deliveries. The same fan-out
// is done by wsroom (Room.Publish) and by raw gws (one Broadcaster per
// message), so that the ratio shows what wsroom costs on top of its
// transport. Metrics:
//
//   - deliveries/s: client receipts per second. The clients share the
//     machine's cores with the server, so this saturates on the clients.
//   - cpu-ns/delivery: the server process's CPU time (getrusage, user+sys,
//     all threads) over the measured interval, per delivery: the figure
//     that shows the server's efficiency.
//   - client-cpu-ns/delivery: the same for the client process, for scale.
//   - writes/delivery: the server process's write system calls (write,
//     writev; /proc/self/io syscw) per delivery: below 1 when a writer
//     sends several queued frames with one call.
//   - wire-B/delivery (wsroom only): bytes the server wrote per delivery,
//     frame headers included (Stats.BytesOut).
//   - p50-µs, p99-µs: publish-to-receive latency over every delivery, from
//     the publish time carried in the message to its receipt by the client
//     (both processes read the same clock). With several messages
//     outstanding this includes queueing behind earlier messages.
//
// Run with -benchtime=Nx (e.g. 2000x); it fails if any delivery is
// missing, out of order, or refused by the server.
func BenchmarkFanout(b *testing.B) {
	for _, impl := range []struct {
		name   string
		newHub newHubFunc
	}{
		{"wsroom", newWsroomHub},
		{"gws", func(cfg hubConfig) (hub, error) { return newGwsHub(cfg, false) }},
	} {
		b.Run(impl.name, func(b *testing.B) {
			for _, n := range []int{100, 1000} {
				// The framework calls the function more than once (b.N = 1
				// first); the server and the clients are set up once.
				var fx *fanout
				b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
					if fx == nil {
						fx = new(fanout)
						var err error
						if fx.session, err = startSession(impl.newHub, n, 1, false); err != nil {
							b.Fatal(err)
						}
						if err := connect(fx.hub, fx.proc, n); err != nil {
							b.Fatal(err)
						}
					}
					fx.run(b)
				})
				if fx != nil && fx.session != nil {
					if err := fx.close(); err != nil {
						b.Errorf("N=%d: close: %v", n, err)
					}
				}
			}
		})
	}
}

// fanoutWindow is the number of messages outstanding. With more than one,
// frames queue behind each connection and writers that batch them gain;
// -fanout.window=1 measures one message at a time.
var fanoutWindow = flag.Int("fanout.window", 16, "BenchmarkFanout: messages outstanding (1 to 1000)")

const (
	fanoutWarmup = 200 // messages published before the first measurement
	// fanoutStall fails the benchmark when no message completes for this
	// long: deliveries are missing.
	fanoutStall = 10 * time.Second
)

type fanout struct {
	*session
	seq  int64 // next message's seq
	warm bool
	text string // the messages' text; "": benchText
}

func (fx *fanout) run(b *testing.B) {
	if w := *fanoutWindow; w < 1 || w > 1000 {
		b.Fatalf("-fanout.window=%d: want 1 to 1000", w)
	}
	if !fx.warm {
		fx.publish(b, fanoutWarmup, *fanoutWindow)
		fx.warm = true
	}
	if err := fx.proc.Reset(setupTimeout); err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	w0, bytes0 := writeSyscalls(b), fx.bytesOut()
	b.ResetTimer()
	cpu0, t0 := loadgen.CPUTime(), time.Now()
	fx.publish(b, b.N, *fanoutWindow)
	elapsed, cpu := time.Since(t0), loadgen.CPUTime()-cpu0
	b.StopTimer()
	writes, wire := writeSyscalls(b)-w0, fx.bytesOut()-bytes0

	rep, err := fx.proc.Report(setupTimeout)
	if err != nil {
		b.Fatal(err)
	}
	deliveries := int64(b.N) * int64(fx.n)
	if got := rep.Latency.Count(); got != deliveries {
		b.Fatalf("the clients recorded %d deliveries, want %d", got, deliveries)
	}
	if err := fx.hub.Problems(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(deliveries)/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(deliveries), "cpu-ns/delivery")
	b.ReportMetric(float64(rep.CPU.Nanoseconds())/float64(deliveries), "client-cpu-ns/delivery")
	b.ReportMetric(float64(writes)/float64(deliveries), "writes/delivery")
	if wire > 0 {
		b.ReportMetric(float64(wire)/float64(deliveries), "wire-B/delivery")
	}
	b.ReportMetric(float64(rep.Latency.Quantile(0.50).Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(rep.Latency.Quantile(0.99).Nanoseconds())/1e3, "p99-µs")
}

// publish publishes count messages to room r0, keeping up to window of
// them outstanding, and returns once every client has received every one.
func (fx *fanout) publish(b *testing.B, count, window int) {
	base := fx.seq
	completed := make([]bool, count)
	published, done := 0, 0
	stall := time.NewTimer(fanoutStall)
	defer stall.Stop()
	for done < count {
		text := fx.text
		if text == "" {
			text = benchText
		}
		for published-done < window && published < count {
			m := e2eMsg{
				Type: "message",
				Room: "r0",
				From: fanoutPublisher,
				Text: text,
				Seq:  base + int64(published),
				Sent: time.Now().UnixMicro(),
			}
			if err := fx.hub.Publish(&m); err != nil {
				b.Fatalf("publish: %v", err)
			}
			published++
		}
		select {
		case seq := <-fx.proc.Done():
			i := seq - base
			if i < 0 || i >= int64(published) || completed[i] {
				b.Fatalf("message %d reported delivered unexpectedly (published %d..%d)", seq, base, base+int64(published)-1)
			}
			completed[i] = true
			done++
			stall.Reset(fanoutStall)
		case err := <-fx.proc.Errs():
			b.Fatalf("client process: %v", err)
		case <-fx.proc.Exited():
			b.Fatalf("client process exited (%v)", fx.proc.ExitErr())
		case <-stall.C:
			b.Fatalf("no message reached all %d clients for %v: %d of %d messages delivered (%d members; server: %v)",
				fx.n, fanoutStall, done, count, fx.hub.Members(), fx.hub.Problems())
		}
	}
	fx.seq += int64(count)
}

// bytesOut returns the bytes wsroom's endpoint has written, frame headers
// included, or 0 for another hub.
func (fx *fanout) bytesOut() int64 {
	if h, ok := fx.hub.(*wsroomHub); ok {
		return h.ep.Stats().BytesOut
	}
	return 0
}

// writeSyscalls returns the number of write system calls (write, writev...)
// this process has made, from /proc/self/io.
func writeSyscalls(b *testing.B) int64 {
	data, err := os.ReadFile("/proc/self/io")
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "syscw:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				b.Fatalf("/proc/self/io: %q: %v", line, err)
			}
			return n
		}
	}
	b.Fatalf("/proc/self/io: no syscw in %q", data)
	return 0
}
