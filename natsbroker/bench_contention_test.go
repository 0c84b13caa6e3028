package natsbroker_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/brokertest"
	"github.com/wsroom/wsroom/internal/wstest"
	"github.com/wsroom/wsroom/natsbroker"
)

// BenchmarkRecordContention measures Record to SubscribeRecorded on one
// nats-server with JetStream (file storage in a temporary directory), one
// server for every part so they run side by side, beyond the one sender
// of BenchmarkBroker (which runs Record beside Publish):
//
//   - record: one sender back to back, the baseline;
//   - record-8-rooms: 8 senders, each recording into a room of its own;
//   - record-contended: 2 processes recording into one room at once,
//     which race for each offset (conflicts/record: the retries).
//
// Each reports messages/s; the others report their time per message as a
// ratio to record's (x-record) when it ran.
func BenchmarkRecordContention(b *testing.B) {
	payload := []byte(`{"seq":1,"text":"a chat message of a typical length, some sixty bytes long"}`)
	ns := newJetStreamServer(b)
	var recordRate float64
	ratio := func(b *testing.B, rate float64) {
		if recordRate > 0 {
			b.ReportMetric(recordRate/rate, "x-record")
		}
	}
	b.Run("record", func(b *testing.B) {
		from, to := historyPair(b, ns)
		done := countTo(b.N)
		defer brokertest.SubscribeRecorded(b, to, "bench-record", func(wsroom.Position, []byte) { done.add() })()
		recordRate = benchSenders(b, done, 1, func(int) error { _, err := from.Record("bench-record", payload); return err })
	})
	b.Run("record-8-rooms", func(b *testing.B) {
		from, to := historyPair(b, ns)
		done := countTo(b.N)
		for r := range 8 {
			defer brokertest.SubscribeRecorded(b, to, fmt.Sprint("bench-rooms-", r), func(wsroom.Position, []byte) { done.add() })()
		}
		ratio(b, benchSenders(b, done, 8, func(r int) error {
			_, err := from.Record(fmt.Sprint("bench-rooms-", r), payload)
			return err
		}))
	})
	b.Run("record-contended", func(b *testing.B) {
		p, q := historyPair(b, ns)
		done := countTo(b.N)
		defer brokertest.SubscribeRecorded(b, p, "bench-contended", func(wsroom.Position, []byte) { done.add() })()
		defer brokertest.SubscribeRecorded(b, q, "bench-contended", func(wsroom.Position, []byte) {})()
		procs := []*natsbroker.Broker{p, q}
		before := p.Stats().Conflicts + q.Stats().Conflicts
		ratio(b, benchSenders(b, done, 2, func(i int) error { _, err := procs[i].Record("bench-contended", payload); return err }))
		conflicts := p.Stats().Conflicts + q.Stats().Conflicts - before
		b.ReportMetric(float64(conflicts)/float64(b.N), "conflicts/record")
	})
}

// countdown closes done once add was called n times.
type countdown struct {
	n, left atomic.Int64
	done    chan struct{}
}

func countTo(n int) *countdown {
	c := &countdown{done: make(chan struct{})}
	c.left.Store(int64(n))
	return c
}

func (c *countdown) add() {
	if c.left.Add(-1) == 0 {
		close(c.done)
	}
}

// benchSenders sends b.N messages from senders goroutines, send(i) for
// sender i, and waits until every one was delivered; it reports
// messages/s and returns the rate.
func benchSenders(b *testing.B, c *countdown, senders int, send func(sender int) error) float64 {
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for i := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range b.N/senders + boolInt(i < b.N%senders) {
				if err := send(i); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case <-c.done:
	case <-time.After(wstest.Timeout):
		b.Fatalf("%d of %d messages not delivered", c.left.Load(), b.N)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	rate := float64(b.N) / elapsed.Seconds()
	b.ReportMetric(rate, "msgs/s")
	return rate
}

func boolInt(v bool) int {
	if v {
		return 1
	}
	return 0
}
