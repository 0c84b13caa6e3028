package natsbroker_test

import (
	"testing"
	"time"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/brokertest"
	"github.com/wsroom/wsroom/internal/wstest"
	"github.com/wsroom/wsroom/natsbroker"
)

func TestHistoryBrokerPassesTheHistoryContract(t *testing.T) {
	wstest.CheckGoroutines(t)
	brokertest.RunHistory(t, historyPairOn(newJetStreamServer(t)))
}

func TestHistoryBrokerPassesTheBrokerContract(t *testing.T) {
	wstest.CheckGoroutines(t)
	ns := newJetStreamServer(t)
	brokertest.Run(t, func(t *testing.T) (wsroom.Broker, wsroom.Broker) {
		a, b := historyPair(t, ns)
		return a, b
	})
}

// historyPairOn returns history brokers standing for two processes, each
// with its own connection to ns.
func historyPairOn(ns *natsServer) brokertest.HistoryPair {
	return func(t *testing.T) (wsroom.HistoryBroker, wsroom.HistoryBroker) {
		a, b := historyPair(t, ns)
		return a, b
	}
}

func historyPair(tb testing.TB, ns *natsServer, opts ...natsbroker.Option) (a, b *natsbroker.Broker) {
	opts = append([]natsbroker.Option{natsbroker.WithHistory(0, time.Minute)}, opts...)
	return newBroker(tb, connect(tb, ns.url()), opts...), newBroker(tb, connect(tb, ns.url()), opts...)
}
