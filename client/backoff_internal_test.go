package client

import (
	"testing"
	"time"
)

// Each delay is drawn from [0, min(hi, lo·2ⁿ⁻¹)], and spreads over it
// (full jitter): no attempt number, however large, escapes the bound.
func TestBackoffDrawsWithinItsBound(t *testing.T) {
	const lo, hi = 100 * time.Millisecond, 10 * time.Second
	for n := 1; n <= 200; n++ {
		bound := min(hi, lo<<min(n-1, 20))
		low, high := 0, 0
		for range 200 {
			d := backoff(n, lo, hi)
			if d < 0 || d > bound {
				t.Fatalf("attempt %d: %v, outside [0, %v]", n, d, bound)
			}
			if d < bound/2 {
				low++
			} else {
				high++
			}
		}
		if low == 0 || high == 0 {
			t.Fatalf("attempt %d: %d draws below half the bound, %d above: not jittered", n, low, high)
		}
	}
	if d := backoff(3, 0, hi); d != 0 {
		t.Errorf("no delay asked, got %v", d)
	}
}
