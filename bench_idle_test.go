//go:build linux

package wsroom_test

import (
	"fmt"
	"runtime/metrics"
	"testing"
)

// BenchmarkIdleMemoryWarm is BenchmarkIdleMemory measured in a warm
// process: a first session of as many connections, opened and closed
// before the measured one, leaves allocated what the Go runtime keeps for
// reuse once a descriptor is closed (its poll descriptors and finalizer
// records, off the Go heap), as BenchmarkIdleMemory already does for
// goroutine descriptors. In a cold process the first connections pay for
// those once (about 0.6 KiB of RSS each here), whichever server comes
// first. starting-stack-B is the size the runtime gave new goroutines at
// the end (GODEBUG adaptivestackstart: the average stack the last
// collection scanned), which handlers started during a connection storm
// may keep: a stack is never shrunk below four times its use.
func BenchmarkIdleMemoryWarm(b *testing.B) {
	n := idleConnsFor(b)
	for _, impl := range idleHubs[:2] { // wsroom and gws
		b.Run(fmt.Sprintf("%s/conns=%d", impl.name, n), func(b *testing.B) {
			for range b.N {
				_ = measureIdle(b, impl, n) // the warm-up
				measureIdle(b, impl, n).report(b)
				b.ReportMetric(startingStack(), "starting-stack-B")
			}
		})
	}
}

// startingStack returns the stack size new goroutines start with.
func startingStack() float64 {
	s := []metrics.Sample{{Name: "/gc/stack/starting-size:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return float64(s[0].Value.Uint64())
}
