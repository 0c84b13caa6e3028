package pgbroker_test

import (
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/brokertest"
	"github.com/wsroom/wsroom/internal/wstest"
	"github.com/wsroom/wsroom/pgbroker"
)

// BenchmarkPublishToDelivery times one message from Room.Publish in one
// registry to a subscriber of the room in another, one publisher
// publishing back to back: through PostgreSQL (two processes; each
// publish is one statement and one commit), the same with the publishes'
// commits not waiting for the WAL to be flushed (synchronous_commit=off
// on the publishing pool), through the in-memory broker (the same flow
// without a server), and within one registry (no broker). The postgres
// runs report their cost as ratios to the other two (x-memory, x-local)
// when they ran before them.
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
	for _, c := range []struct{ name, params string }{
		{"postgres", ""},
		{"postgres-async-commit", "&synchronous_commit=off"},
	} {
		b.Run(c.name, func(b *testing.B) {
			url := pgURL(b)
			p := pgbroker.WithPrefix(uniquePrefix())
			ns := benchFlow(b, wsroom.NewRooms[benchMsg](wsroom.WithBroker(newBroker(b, url+c.params, p))),
				wsroom.NewRooms[benchMsg](wsroom.WithBroker(newBroker(b, url, p))))
			if memoryNs > 0 {
				b.ReportMetric(ns/memoryNs, "x-memory")
			}
			if localNs > 0 {
				b.ReportMetric(ns/localNs, "x-local")
			}
		})
	}
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

// BenchmarkRecordToDelivery times one message from one Broker to a
// subscription of the room on another, one sender back to back, at the
// Broker's own seams: Publish to Subscribe (a room's ephemeral messages)
// beside Record to SubscribeRecorded (its history: the same statement,
// returning the message's position), in one run on one server.
func BenchmarkRecordToDelivery(b *testing.B) {
	text := []byte(`{"text":"a chat message of a typical length, some sixty bytes long"}`)
	b.Run("publish", func(b *testing.B) {
		from, to := benchPair(b)
		lat := newLatencies(b.N)
		defer brokertest.Subscribe(b, to, "bench", func([]byte) { lat.received() })()
		lat.time(b, func() error { return from.Publish("bench", text) })
	})
	b.Run("record", func(b *testing.B) {
		from, to := benchPair(b)
		lat := newLatencies(b.N)
		defer brokertest.SubscribeRecorded(b, to, "bench", func(wsroom.Position, []byte) { lat.received() })()
		lat.time(b, func() error { _, err := from.Record("bench", text); return err })
	})
}

// benchPair returns two Brokers of a prefix of their own.
func benchPair(b *testing.B) (from, to *pgbroker.Broker) {
	url, p := pgURL(b), pgbroker.WithPrefix(uniquePrefix())
	return newBroker(b, url, p), newBroker(b, url, p)
}

// latencies are the send and receive times of n messages, received in
// the order they were sent, by one goroutine at a time.
type latencies struct {
	sent, recv []time.Time
	n          atomic.Int64
	done       chan struct{}
}

func newLatencies(n int) *latencies {
	return &latencies{sent: make([]time.Time, n), recv: make([]time.Time, n), done: make(chan struct{})}
}

// received records the next message's arrival.
func (l *latencies) received() {
	i := l.n.Add(1) - 1
	if i < int64(len(l.recv)) {
		l.recv[i] = time.Now()
	}
	if i == int64(len(l.recv))-1 {
		close(l.done)
	}
}

// time sends b.N messages with send, back to back, waits for all of them
// to arrive, and reports messages/s and the p50 and p99 latency.
func (l *latencies) time(b *testing.B, send func() error) {
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		l.sent[i] = time.Now()
		if err := send(); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-l.done:
	case <-time.After(wstest.Timeout):
		b.Fatalf("%d of %d messages delivered", l.n.Load(), b.N)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	lat := make([]time.Duration, b.N)
	for i := range lat {
		lat[i] = l.recv[i].Sub(l.sent[i])
	}
	slices.Sort(lat)
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(us(lat[b.N/2]), "p50-µs")
	b.ReportMetric(us(lat[b.N*99/100]), "p99-µs")
}
