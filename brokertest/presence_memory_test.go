package brokertest_test

import (
	"testing"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/brokertest"
)

func memoryPresencePair(bus **brokertest.MemoryPresence) brokertest.PresencePair {
	return func(*testing.T) (a, b wsroom.PresenceBroker) {
		*bus = brokertest.NewMemoryPresence()
		return (*bus).Broker(), (*bus).Broker()
	}
}

func TestMemoryPresencePassesThePresenceBrokerContract(t *testing.T) {
	var bus *brokertest.MemoryPresence
	brokertest.RunPresence(t, memoryPresencePair(&bus))
}

func TestMemoryPresenceOutageThatKeepsTheEntries(t *testing.T) {
	var bus *brokertest.MemoryPresence
	brokertest.PresenceOutage(t, memoryPresencePair(&bus), func() { bus.SetDown(true) }, func() { bus.SetDown(false) })
}

func TestMemoryPresenceOutageThatLosesTheEntries(t *testing.T) {
	var bus *brokertest.MemoryPresence
	brokertest.PresenceOutage(t, memoryPresencePair(&bus), func() { bus.SetDown(true) }, func() {
		bus.Reset()
		bus.SetDown(false)
	})
}
