package redisbroker_test

import (
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/brokertest"
	"github.com/wsroom/wsroom/internal/wstest"
	"github.com/wsroom/wsroom/redisbroker"
)

// BenchmarkPublishToDelivery times one message from Room.Publish in one
// registry to a subscriber of the room in another, one publisher
// publishing back to back: through Redis (two processes), through the
// in-memory broker (the same flow without a server), and within one
// registry (no broker). The redis run reports its cost as ratios to the
// other two (x-memory, x-local) when they ran before it.
func BenchmarkPublishToDelivery(b *testing.B) {
	var localNs, memoryNs float64
	b.Run("local", func(b *testing.B) {
		rooms := wsroom.NewRooms[benchMsg]()
		localNs = benchFlow(b, rooms, rooms)
	})
	b.Run("memory", func(b *testing.B) {
		m := brokertest.NewMemory()
		memoryNs = benchFlow(b, wsroom.NewRooms[benchMsg](wsroom.WithBroker(m.Broker())),
			wsroom.NewRooms[benchMsg](wsroom.WithBroker(m.Broker())))
	})
	b.Run("redis", func(b *testing.B) {
		addr := redisAddr(b)
		p := redisbroker.WithPrefix(uniquePrefix(b))
		ns := benchFlow(b, wsroom.NewRooms[benchMsg](wsroom.WithBroker(newBroker(b, addr, nil, p))),
			wsroom.NewRooms[benchMsg](wsroom.WithBroker(newBroker(b, addr, nil, p))))
		if memoryNs > 0 {
			b.ReportMetric(ns/memoryNs, "x-memory")
		}
		if localNs > 0 {
			b.ReportMetric(ns/localNs, "x-local")
		}
	})
}

type benchMsg struct {
	Seq  int    `json:"seq"`
	Text string `json:"text"`
}

// benchFlow publishes b.N messages to room "bench" of from and waits for
// to's subscriber to have them all; it reports messages/s and the p50 and
// p99 latency, and returns the time per message in ns.
func benchFlow(b *testing.B, from, to *wsroom.Rooms[benchMsg]) float64 {
	sent, recv := make([]time.Time, b.N), make([]time.Time, b.N)
	var n atomic.Int64
	done, ready := make(chan struct{}), make(chan struct{}, 1)
	unsubscribe, err := to.Room("bench").SubscribeFunc(func(m benchMsg) {
		if m.Seq < 0 {
			select {
			case ready <- struct{}{}:
			default:
			}
			return
		}
		recv[m.Seq] = time.Now()
		if n.Add(1) == int64(b.N) {
			close(done)
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	defer unsubscribe()
	room := from.Room("bench")
	for deadline := time.Now().Add(wstest.Timeout); ; { // until the subscription is active
		if err := room.Publish(benchMsg{Seq: -1}); err != nil {
			b.Fatal(err)
		}
		select {
		case <-ready:
		case <-time.After(20 * time.Millisecond):
			if time.Now().After(deadline) {
				b.Fatal("the subscription never became active")
			}
			continue
		}
		break
	}
	text := "a chat message of a typical length, some sixty bytes long"
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		sent[i] = time.Now()
		if err := room.Publish(benchMsg{Seq: i, Text: text}); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-done:
	case <-time.After(wstest.Timeout):
		b.Fatalf("%d of %d messages delivered", n.Load(), b.N)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	lat := make([]time.Duration, b.N)
	for i := range lat {
		lat[i] = recv[i].Sub(sent[i])
	}
	slices.Sort(lat)
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(us(lat[b.N/2]), "p50-µs")
	b.ReportMetric(us(lat[b.N*99/100]), "p99-µs")
	return float64(elapsed.Nanoseconds()) / float64(b.N)
}

// BenchmarkRecordBesidePublish times messages from one Broker to another's
// subscription, one sender back to back, at the broker's level (no
// rooms): plain Publish to Subscribe, then Record (the script: append,
// number, publish) to SubscribeRecorded. Each reports messages/s; record
// reports its cost as a ratio to publish (x-publish) when both ran.
func BenchmarkRecordBesidePublish(b *testing.B) {
	payload := []byte(`{"seq":1,"text":"a chat message of a typical length, some sixty bytes long"}`)
	var publishNs float64
	b.Run("publish", func(b *testing.B) {
		from, to := benchPair(b)
		var n atomic.Int64
		done := make(chan struct{})
		defer brokertest.Subscribe(b, to, "bench", func([]byte) {
			if n.Add(1) == int64(b.N) {
				close(done)
			}
		})()
		publishNs = benchSend(b, done, func() error { return from.Publish("bench", payload) })
	})
	b.Run("record", func(b *testing.B) {
		from, to := benchPair(b)
		var n atomic.Int64
		done := make(chan struct{})
		defer brokertest.SubscribeRecorded(b, to, "bench", func(wsroom.Position, []byte) {
			if n.Add(1) == int64(b.N) {
				close(done)
			}
		})()
		ns := benchSend(b, done, func() error { _, err := from.Record("bench", payload); return err })
		if publishNs > 0 {
			b.ReportMetric(ns/publishNs, "x-publish")
		}
	})
}

func benchPair(b *testing.B) (from, to *redisbroker.Broker) {
	addr := redisAddr(b)
	p := redisbroker.WithPrefix(uniquePrefix(b))
	return newBroker(b, addr, nil, p), newBroker(b, addr, nil, p)
}

// benchSend sends b.N messages and waits for done; it reports messages/s
// and returns the time per message in ns.
func benchSend(b *testing.B, done <-chan struct{}, send func() error) float64 {
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if err := send(); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-done:
	case <-time.After(wstest.Timeout):
		b.Fatal("not every message delivered")
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	return float64(elapsed.Nanoseconds()) / float64(b.N)
}
