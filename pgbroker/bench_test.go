package pgbroker_test

import (
	"testing"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/brokertest"
	"github.com/wsroom/wsroom/pgbroker"
)

// BenchmarkBroker is brokertest.Benchmark through PostgreSQL on loopback:
// two Brokers, each with its own pool and listening connection, standing
// for two processes. Each Publish and each Record is one statement and
// one commit, which waits for the WAL to be flushed.
func BenchmarkBroker(b *testing.B) { benchBroker(b, "") }

// BenchmarkBrokerAsyncCommit is BenchmarkBroker with the sender's commits
// not waiting for the WAL flush (synchronous_commit=off on its pool): how
// much of the cost is the flush.
func BenchmarkBrokerAsyncCommit(b *testing.B) { benchBroker(b, "&synchronous_commit=off") }

func benchBroker(b *testing.B, senderParams string) {
	brokertest.Benchmark(b, func(tb testing.TB) (from, to wsroom.Broker) {
		url, p := pgURL(tb), pgbroker.WithPrefix(uniquePrefix())
		return newBroker(tb, url+senderParams, p), newBroker(tb, url, p)
	})
}
