package loadgen

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// Histogram counts durations in nanoseconds in log-linear buckets: exact
// below 128 ns, then 64 buckets per power of two (within 1.6%). It is safe
// for concurrent use.
type Histogram struct {
	buckets [nBuckets]atomic.Int64
}

const (
	subBits  = 6
	sub      = 1 << subBits // buckets per power of two
	nBuckets = sub * (64 - subBits)
)

func bucketOf(v int64) int {
	if v < 2*sub {
		return int(max(v, 0))
	}
	shift := bits.Len64(uint64(v)) - subBits - 1
	return sub*shift + int(v>>shift)
}

// bucketRange returns the smallest value of bucket i and its width.
func bucketRange(i int) (lo, width int64) {
	if i < 2*sub {
		return int64(i), 1
	}
	shift := i/sub - 1
	return int64(i-sub*shift) << shift, 1 << shift
}

// Record counts one duration, in nanoseconds.
func (h *Histogram) Record(ns int64) { h.buckets[bucketOf(ns)].Add(1) }

// Reset clears every count.
func (h *Histogram) Reset() {
	for i := range h.buckets {
		h.buckets[i].Store(0)
	}
}

// Count returns the number of durations recorded.
func (h *Histogram) Count() int64 {
	var n int64
	for i := range h.buckets {
		n += h.buckets[i].Load()
	}
	return n
}

// Quantile returns the q-quantile (0 < q ≤ 1) of the recorded durations,
// as the middle of its bucket; 0 if none were recorded.
func (h *Histogram) Quantile(q float64) time.Duration {
	total := h.Count()
	if total == 0 {
		return 0
	}
	rank := int64(q * float64(total))
	if float64(rank) < q*float64(total) {
		rank++
	}
	rank = max(rank, 1)
	var seen int64
	for i := range h.buckets {
		if seen += h.buckets[i].Load(); seen >= rank {
			lo, w := bucketRange(i)
			return time.Duration(lo + (w-1)/2)
		}
	}
	return 0 // not reached
}
