package pgbroker_test

import (
	"testing"

	"github.com/wsroom/wsroom/brokertest"
	"github.com/wsroom/wsroom/internal/wstest"
)

func TestBrokerPassesTheHistoryBrokerContract(t *testing.T) {
	wstest.CheckGoroutines(t)
	brokertest.RunHistory(t, historyPair(pgURL(t)))
}
