package wsroom

import (
	"testing"
	"time"
)

// TestHealthCountsFromTheStartOfTheFirstRoundThatSucceeded: the lease of
// answers a process waits for before it claims starts when its first
// good round began, so a round that took its time does not push the
// first claim a round later.
func TestHealthCountsFromTheStartOfTheFirstRoundThatSucceeded(t *testing.T) {
	ps := &presences{}
	began := time.Now().Add(-time.Second) // a round that began a second ago and just ended well
	if got := ps.healthyFor(began); got < time.Second {
		t.Fatalf("healthy for %v after a round that began 1s ago, want at least 1s", got)
	}
	later := time.Now() // the next round: the count goes on from the first
	if got := ps.healthyFor(later); got < time.Second {
		t.Fatalf("healthy for %v on the next round, want the count kept from the first", got)
	}
	ps.failed()
	if got := ps.healthyFor(time.Now()); got > 100*time.Millisecond {
		t.Fatalf("healthy for %v right after a failure, want the count restarted", got)
	}
}
