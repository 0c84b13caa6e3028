package brokertest_test

import (
	"testing"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/brokertest"
)

func TestMemoryHistoryPassesTheHistoryBrokerContract(t *testing.T) {
	brokertest.RunHistory(t, func(*testing.T) (a, b wsroom.HistoryBroker) {
		bus := brokertest.NewMemoryHistory(1000)
		return bus.Broker(), bus.Broker()
	})
}
