package loadgen

import (
	"testing"
	"time"
)

func TestBuckets(t *testing.T) {
	prev := -1
	for _, v := range []int64{0, 1, 127, 128, 129, 255, 256, 1000, 12345, 1e6, 123456789, 1 << 40, 1<<63 - 1} {
		i := bucketOf(v)
		if i < prev || i >= nBuckets {
			t.Fatalf("bucketOf(%d) = %d after %d", v, i, prev)
		}
		prev = i
		lo, w := bucketRange(i)
		if v < lo || v-lo >= w {
			t.Errorf("%d in bucket %d = [%d, %d+%d)", v, i, lo, lo, w)
		}
		if w > 1 && float64(w)/float64(lo) > 1.0/sub+1e-9 {
			t.Errorf("bucket %d: width %d at %d: over 1/%d", i, w, lo, sub)
		}
	}
	for i := range nBuckets - 1 {
		lo, w := bucketRange(i)
		if next, _ := bucketRange(i + 1); next != lo+w {
			t.Fatalf("bucket %d = [%d, +%d), next starts at %d", i, lo, w, next)
		}
	}
}

func TestQuantile(t *testing.T) {
	var h Histogram
	if h.Quantile(0.5) != 0 {
		t.Fatal("empty histogram")
	}
	for i := 1; i <= 1000; i++ {
		h.Record(int64(i) * int64(time.Microsecond))
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Microsecond}, {0.99, 990 * time.Microsecond}, {1, time.Millisecond}} {
		got := h.Quantile(c.q)
		if d := float64(got-c.want) / float64(c.want); d < -0.02 || d > 0.02 {
			t.Errorf("Quantile(%v) = %v, want %v within 2%%", c.q, got, c.want)
		}
	}
}

func TestIntField(t *testing.T) {
	p := []byte(`{"type":"message","room":"r0","from":-1,"text":"seq: 3","seq":42,"sent":1700000000123456}`)
	for _, c := range []struct {
		key  string
		want int64
		ok   bool
	}{{`"from":`, -1, true}, {`"seq":`, 42, true}, {`"sent":`, 1700000000123456, true}, {`"id":`, 0, false}} {
		got, ok := intField(p, []byte(c.key))
		if got != c.want || ok != c.ok {
			t.Errorf("intField(%s) = %d, %v; want %d, %v", c.key, got, ok, c.want, c.ok)
		}
	}
	if _, ok := intField([]byte(`{"seq":-}`), []byte(`"seq":`)); ok {
		t.Error(`intField accepted "-" as a number`)
	}
}
