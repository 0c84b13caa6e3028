package redisbroker_test

import (
	"testing"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/brokertest"
	"github.com/wsroom/wsroom/redisbroker"
)

// BenchmarkBroker is brokertest.Benchmark through a redis-server on
// loopback: two Brokers, each with its own connections, standing for two
// processes. Publish waits for each PUBLISH reply (to keep a publisher's
// order and report errors); Record runs the history script (number,
// append, trim, publish) in one round trip.
func BenchmarkBroker(b *testing.B) {
	brokertest.Benchmark(b, func(tb testing.TB) (from, to wsroom.Broker) {
		addr, p := redisAddr(tb), redisbroker.WithPrefix(uniquePrefix(tb))
		return newBroker(tb, addr, nil, p), newBroker(tb, addr, nil, p)
	})
}
