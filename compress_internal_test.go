package wsroom

import (
	"strings"
	"sync"
	"testing"
	"unsafe"
)

// recordingWriter is discardWriter that remembers the first byte of every
// frame it writes.
type recordingWriter struct {
	mu     *sync.Mutex
	firsts map[*byte]int
}

func (w recordingWriter) writev(_ *worker, l *frameList) (frames, bytes int, err error) {
	w.mu.Lock()
	for f := range l.all {
		w.firsts[unsafe.SliceData(f)]++
	}
	w.mu.Unlock()
	frames, bytes = l.count()
	l.consume(bytes)
	return frames, bytes, nil
}

// TestPublishCompressesOnceForEveryMember: every member that negotiated
// compression is handed the very same compressed frame, and a publish
// allocates as much for 64 such members as for one.
func TestPublishCompressesOnceForEveryMember(t *testing.T) {
	msg := sample
	msg.Content = strings.Repeat("compressible ", 40)
	allocs := func(n int) (float64, map[*byte]int) {
		conns, srv := stubConns[benchMsg](n)
		srv.cfg.compressMin = DefaultCompressionThreshold
		w := recordingWriter{mu: new(sync.Mutex), firsts: map[*byte]int{}}
		room := NewRooms[benchMsg]().Room("once")
		for _, c := range conns {
			c.conn.deflate, c.conn.direct = true, w
			if _, err := room.Subscribe(c); err != nil {
				t.Fatal(err)
			}
		}
		_ = room.Publish(msg) // the pools warm up
		drained(conns)
		clear(w.firsts)
		a := testing.AllocsPerRun(50, func() {
			_ = room.Publish(msg)
			drained(conns)
		})
		// The warm-up, and AllocsPerRun runs once more than asked.
		if got, want := srv.stats.compressed.Load(), int64(52*n); got != want {
			t.Errorf("%d members: %d frames counted compressed, want %d", n, got, want)
		}
		return a, w.firsts
	}
	one, _ := allocs(1)
	many, firsts := allocs(64)
	// Under -race sync.Pool drops what it is given at random: allocations
	// are not comparable there.
	if many > one && !raceEnabled {
		t.Errorf("a publish allocates %.1f times for 64 compressing members, %.1f for one: compressed more than once", many, one)
	}
	if len(firsts) != 51 { // AllocsPerRun's 50 and its own first run
		t.Errorf("51 publishes went out in %d distinct frames, want 51", len(firsts))
	}
	for _, n := range firsts {
		if n != 64 {
			t.Fatalf("a compressed frame went to %d members, want all 64", n)
		}
	}
}
