package wsroom

import (
	"context"
	"testing"
	"time"
)

// TestRateLimitBucketAllocatesNothing: taking a token, and waiting for
// one once the reader has its timer, allocate nothing per message.
func TestRateLimitBucketAllocatesNothing(t *testing.T) {
	c := &conn{cfg: &config{rate: 1e6, burst: 1 << 30}, stats: new(counters), ctx: context.Background()}
	if n := testing.AllocsPerRun(1000, func() {
		if wait := c.received(); wait != 0 {
			t.Fatalf("waited %v with a full bucket", wait)
		}
	}); n != 0 {
		t.Errorf("received: %v allocations per message, want 0", n)
	}
	c.cfg.burst = 1
	if n := testing.AllocsPerRun(100, func() {
		c.rate.tokens, c.rate.refilled = 0, nanotime() // empty: the next token is 1 µs away
		if !c.throttle(time.Microsecond) {
			t.Fatal("throttle gave up on an open connection")
		}
	}); n != 0 {
		t.Errorf("throttle: %v allocations per wait, want 0", n)
	}
}
