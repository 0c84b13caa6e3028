package brokertest_test

import (
	"testing"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/brokertest"
)

// BenchmarkBroker runs the adapters' benchmark on the in-memory bus: the
// cost of wsroom and the seams alone, without a server, for the ratios.
func BenchmarkBroker(b *testing.B) {
	bus := brokertest.NewMemoryHistory(1000)
	brokertest.Benchmark(b, func(testing.TB) (from, to wsroom.Broker) { return bus.Broker(), bus.Broker() })
}
