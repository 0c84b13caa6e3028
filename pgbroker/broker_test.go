package pgbroker_test

import (
	"testing"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/brokertest"
	"github.com/wsroom/wsroom/internal/wstest"
	"github.com/wsroom/wsroom/pgbroker"
)

func TestBrokerPassesTheBrokerContract(t *testing.T) {
	wstest.CheckGoroutines(t)
	brokertest.Run(t, pair(pgURL(t)))
}

func TestTwoInstancesJoinedByPostgreSQLFormOneRoom(t *testing.T) {
	wstest.CheckGoroutines(t)
	brokertest.TwoInstances(t, pair(pgURL(t)), 2000)
}

func TestPostgreSQLOutageKeepsLocalDeliveryAndListensAgain(t *testing.T) {
	wstest.CheckGoroutines(t)
	srv := ownServer(t)
	var brokers []*pgbroker.Broker
	pair := func(t *testing.T) (wsroom.Broker, wsroom.Broker) {
		p := pgbroker.WithPrefix(uniquePrefix())
		brokers = []*pgbroker.Broker{newBroker(t, srv.URL, p), newBroker(t, srv.URL, p)}
		return brokers[0], brokers[1]
	}
	brokertest.Outage(t, pair, srv.Stop, func() { srv.Restart(t) })
}
