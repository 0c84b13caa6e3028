package wstest

import (
	"runtime"
	"testing"
	"time"
)

// CheckGoroutines fails the test if, once its other cleanups have run,
// goroutines started during the test are still alive after Timeout. Call it
// first in a test, so its cleanup runs last.
func CheckGoroutines(t testing.TB) {
	t.Helper()
	base := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(Timeout)
		for runtime.NumGoroutine() > base {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				t.Errorf("goroutines leaked: %d now, %d before the test\n%s",
					runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
				return
			}
			runtime.Gosched()
			time.Sleep(10 * time.Millisecond)
		}
	})
}
