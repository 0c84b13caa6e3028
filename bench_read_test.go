package wsroom_test

import (
	"encoding/json"
	"fmt"
	"iter"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/wstest"
)

// BenchmarkRead measures the inbound path: messages read from the socket,
// decoded, validated and handed to a handler that counts them, over
// loopback, from raw clients in this process that write pre-built frames
// (writes of `batch` frames each, so that one read on the server finds one
// frame or many). ns/op is per message, all connections together, and
// cpu-ns/msg the process's CPU time per message (steadier than ns/op on a
// busy machine); the clients' writes are in both, and are the cheap side.
func BenchmarkRead(b *testing.B) {
	for _, batch := range []int{1, 16} {
		b.Run(fmt.Sprintf("conns=50/batch=%d", batch), func(b *testing.B) { benchRead(b, 50, batch) })
	}
}

func benchRead(b *testing.B, conns, batch int) {
	var got atomic.Int64
	done := make(chan struct{})
	target := int64(b.N)
	_, srv := serve(b, func(c *wsroom.Conn[chatOut], msgs iter.Seq2[chatIn, error]) error {
		for _, err := range msgs {
			if err != nil {
				return err
			}
			if got.Add(1) == target {
				close(done)
			}
		}
		return nil
	}, wsroom.WithLogger(discardLogger()), wsroom.WithRateLimit(0, 0))
	p, err := json.Marshal(chatIn{Type: "message", Content: "hello, room: a message of a chat's usual size"})
	if err != nil {
		b.Fatal(err)
	}
	frame := wstest.Frame(true, 0x1, p)
	clients := make([]*wstest.Raw, conns)
	for i := range clients {
		r, _, err := wstest.RawDial(srv.URL+"/ws/lobby", nil)
		if err != nil {
			b.Fatal(err)
		}
		defer r.Close()
		clients[i] = r
	}
	var out []byte
	for range batch {
		out = append(out, frame...)
	}
	b.ReportAllocs()
	cpu0, _ := processCPU()
	b.ResetTimer()
	errs := make(chan error, conns)
	for i, r := range clients {
		n := b.N / conns
		if i < b.N%conns {
			n++
		}
		go func() {
			for n > 0 {
				k := min(n, batch)
				if err := r.Write(out[:k*len(frame)]); err != nil {
					errs <- err
					return
				}
				n -= k
			}
			errs <- nil
		}()
	}
	for range clients {
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-done:
	case <-time.After(time.Minute):
		b.Fatalf("%d of %d messages read within a minute", got.Load(), b.N)
	}
	b.StopTimer()
	if cpu1, ok := processCPU(); ok {
		b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "cpu-ns/msg")
	}
}
