package wstest

import (
	"testing"
	"time"
)

// WaitFor polls cond until it holds, failing the test after Timeout. It
// waits on a condition with a deadline: the short pause between polls is
// not what the test relies on.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	WaitWithin(t, Timeout, what, cond)
}

// WaitWithin is WaitFor with a deadline of d, for a test whose claim is
// that cond comes to hold within d.
func WaitWithin(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
