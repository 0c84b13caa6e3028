package natsbroker_test

import (
	"testing"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/brokertest"
)

// BenchmarkBroker is brokertest.Benchmark through a nats-server in the
// test process, on loopback, with JetStream on file storage in a
// temporary directory: two Brokers with history, each with its own
// connection, standing for two processes. Publish hands the message to
// nats.go's buffer and returns; nothing waits for the server. Record
// waits for JetStream to store the message (one round trip), which then
// republishes it to SubscribeRecorded.
func BenchmarkBroker(b *testing.B) {
	brokertest.Benchmark(b, func(tb testing.TB) (from, to wsroom.Broker) {
		return historyPair(tb, newJetStreamServer(tb))
	})
}
