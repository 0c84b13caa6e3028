package natsbroker_test

import (
	"testing"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/brokertest"
)

// BenchmarkBroker is brokertest.Benchmark through a nats-server in the
// test process, on loopback: two Brokers, each with its own connection,
// standing for two processes. Publish hands the message to nats.go's
// buffer and returns; nothing waits for the server.
func BenchmarkBroker(b *testing.B) {
	brokertest.Benchmark(b, func(tb testing.TB) (from, to wsroom.Broker) {
		return natsPair(tb, newServer(tb))
	})
}
