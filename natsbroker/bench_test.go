package natsbroker_test

import (
	"slices"
	"testing"
	"time"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/brokertest"
)

// benchMsg carries its publication time, for latency.
type benchMsg struct {
	Seq  int   `json:"seq"`
	Sent int64 `json:"sent"`
}

const (
	benchBatch  = 1000 // messages per op
	benchWindow = 64   // messages in flight at most
)

// flowResult is what one cross-instance flow measured.
type flowResult struct {
	rate     float64 // messages per second
	p50, p99 time.Duration
}

// memoryFlow is the in-process result of the last run, for the ratio.
var memoryFlow *flowResult

// BenchmarkCrossInstance measures a message published on one instance's
// Rooms reaching a func subscriber of the same room on another instance:
// through the in-memory broker (the cost of wsroom alone: encode, copy,
// validate, decode), then through a real nats-server on loopback. Each op
// is a batch of 1000 messages with at most 64 in flight; the metrics are
// messages/s and the p50/p99 latency from Publish to delivery, and the nats
// run reports its ratios to the memory run.
func BenchmarkCrossInstance(b *testing.B) {
	b.Run("memory", func(b *testing.B) {
		m := brokertest.NewMemory()
		r := crossInstance(b, m.Broker(), m.Broker())
		memoryFlow = &r
	})
	b.Run("nats", func(b *testing.B) {
		pub, sub := natsPair(b, newServer(b))
		r := crossInstance(b, pub, sub)
		if memoryFlow != nil {
			b.ReportMetric(float64(r.p50)/float64(memoryFlow.p50), "p50/memory")
			b.ReportMetric(r.rate/memoryFlow.rate, "rate/memory")
		}
	})
}

func crossInstance(b *testing.B, pub, sub wsroom.Broker) flowResult {
	from := wsroom.NewRooms[benchMsg](wsroom.WithBroker(pub)).Room("bench")
	to := wsroom.NewRooms[benchMsg](wsroom.WithBroker(sub)).Room("bench")
	got := make(chan time.Duration, benchWindow)
	next := 0
	// SubscribeFunc returns once the broker's subscription is in effect:
	// the first message counts.
	leave, err := to.SubscribeFunc(func(m benchMsg) {
		if m.Seq != next {
			b.Errorf("message %d arrived as number %d", m.Seq, next)
		}
		next++
		got <- time.Duration(time.Now().UnixNano() - m.Sent)
	})
	if err != nil {
		b.Fatal(err)
	}
	defer leave()

	total := b.N * benchBatch
	lat := make([]time.Duration, 0, total)
	receive := func() {
		select {
		case d := <-got:
			lat = append(lat, d)
		case <-time.After(10 * time.Second):
			b.Fatalf("message %d lost", len(lat))
		}
	}
	b.ResetTimer()
	start := time.Now()
	for i := range total {
		if i-len(lat) == benchWindow {
			receive()
		}
		if err := from.Publish(benchMsg{Seq: i, Sent: time.Now().UnixNano()}); err != nil {
			b.Fatal(err)
		}
	}
	for len(lat) < total {
		receive()
	}
	elapsed := time.Since(start)
	b.StopTimer()

	slices.Sort(lat)
	r := flowResult{
		rate: float64(total) / elapsed.Seconds(),
		p50:  lat[total/2],
		p99:  lat[total*99/100],
	}
	b.ReportMetric(r.rate, "msgs/s")
	b.ReportMetric(float64(r.p50)/1e3, "p50-µs")
	b.ReportMetric(float64(r.p99)/1e3, "p99-µs")
	return r
}
