package brokertest

import (
	"slices"
	"testing"
	"time"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/wstest"
)

// BenchPair returns two brokers standing for two processes that share one
// server, as Pair does, for a benchmark.
type BenchPair func(tb testing.TB) (from, to wsroom.Broker)

// BenchWindow is how many messages Benchmark keeps in flight at most: the
// sender waits for the oldest to arrive before it sends one more.
const BenchWindow = 64

// Benchmark measures messages crossing from one process to another
// through the brokers of pair, one sender, at most BenchWindow in flight,
// each op one message (run it with -benchtime=Nx). Its sub-benchmarks:
//
//   - broker/publish: Broker.Publish to a Subscribe of the other broker;
//   - broker/record (HistoryBrokers only): Record to SubscribeRecorded;
//   - rooms/publish: Room.Publish of one wsroom registry to a
//     SubscribeFunc of the room in the other (encode, the broker,
//     validate, decode);
//   - rooms/recorded (HistoryBrokers only): the same in registries
//     WithHistory, through Record.
//
// Each reports messages/s and the p50 and p99 latency from the send to
// the delivery. Every adapter's benchmark calls it with its own pair, so
// that one command runs them all alike, side by side with the in-memory
// bus (NewMemoryHistory):
//
//	go test -run '^$' -bench '^BenchmarkBroker$' -benchtime 2000x ./brokertest ./natsbroker ./redisbroker ./pgbroker
func Benchmark(b *testing.B, pair BenchPair) {
	payload := []byte(`{"seq":0,"text":"a chat message of a typical length, some sixty bytes long"}`)
	b.Run("broker/publish", func(b *testing.B) {
		from, to := pair(b)
		f := newFlow(b.N)
		defer Subscribe(b, to, "bench", func([]byte) { f.arrived() })()
		f.run(b, func() error { return from.Publish("bench", payload) })
	})
	b.Run("broker/record", func(b *testing.B) {
		from, to := historyPair(b, pair)
		f := newFlow(b.N)
		defer SubscribeRecorded(b, to, "bench", func(wsroom.Position, []byte) { f.arrived() })()
		f.run(b, func() error { _, err := from.Record("bench", payload); return err })
	})
	b.Run("rooms/publish", func(b *testing.B) {
		from, to := pair(b)
		benchRooms(b, wsroom.NewRooms[benchMsg](wsroom.WithBroker(from)), wsroom.NewRooms[benchMsg](wsroom.WithBroker(to)))
	})
	b.Run("rooms/recorded", func(b *testing.B) {
		from, to := historyPair(b, pair)
		benchRooms(b, wsroom.NewRooms[benchMsg](wsroom.WithBroker(from), wsroom.WithHistory(1000, time.Minute)),
			wsroom.NewRooms[benchMsg](wsroom.WithBroker(to), wsroom.WithHistory(1000, time.Minute)))
	})
}

// historyPair returns pair's brokers as HistoryBrokers, or skips the
// benchmark when they are not.
func historyPair(b *testing.B, pair BenchPair) (from, to wsroom.HistoryBroker) {
	f, t := pair(b)
	from, ok1 := f.(wsroom.HistoryBroker)
	to, ok2 := t.(wsroom.HistoryBroker)
	if !ok1 || !ok2 {
		b.Skip("the broker keeps no history")
	}
	return from, to
}

// benchMsg is what the rooms benchmarks publish; Seq and Epoch are left
// for the registry to fill in on the recorded path.
type benchMsg struct {
	N     int    `json:"n"`
	Text  string `json:"text"`
	Seq   uint64 `json:"seq,omitempty"`
	Epoch string `json:"epoch,omitempty"`
}

func benchRooms(b *testing.B, from, to *wsroom.Rooms[benchMsg]) {
	f := newFlow(b.N)
	// SubscribeFunc returns once the broker's subscription is in effect:
	// every message from now on counts.
	unsubscribe, err := to.Room("bench").SubscribeFunc(func(benchMsg) { f.arrived() })
	if err != nil {
		b.Fatal(err)
	}
	defer unsubscribe()
	room := from.Room("bench")
	text := "a chat message of a typical length, some sixty bytes long"
	i := 0
	f.run(b, func() error { i++; return room.Publish(benchMsg{N: i, Text: text}) })
}

// flow is the send and arrival times of n messages, which arrive in the
// order they were sent, one arrival at a time.
type flow struct {
	sent, recv []time.Time
	arrivals   chan struct{} // one per arrival, at most BenchWindow pending
}

func newFlow(n int) *flow {
	return &flow{sent: make([]time.Time, n), recv: make([]time.Time, 0, n), arrivals: make(chan struct{}, BenchWindow+1)}
}

// arrived records the next message's arrival; it is the subscriber.
func (f *flow) arrived() {
	f.recv = append(f.recv, time.Now())
	f.arrivals <- struct{}{}
}

// run sends b.N messages with send, at most BenchWindow in flight, waits
// for all to arrive and reports the rate and latencies.
func (f *flow) run(b *testing.B, send func() error) {
	b.ReportAllocs()
	await := func(i int) {
		select {
		case <-f.arrivals:
		case <-time.After(wstest.Timeout):
			b.Fatalf("message %d of %d never arrived", i+1, b.N)
		}
	}
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		if i >= BenchWindow {
			await(i - BenchWindow)
		}
		f.sent[i] = time.Now()
		if err := send(); err != nil {
			b.Fatal(err)
		}
	}
	for i := max(0, b.N-BenchWindow); i < b.N; i++ {
		await(i)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	lat := make([]time.Duration, b.N)
	for i := range lat {
		lat[i] = f.recv[i].Sub(f.sent[i])
	}
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(micros(lat[b.N/2]), "p50-µs")
	b.ReportMetric(micros(lat[b.N*99/100]), "p99-µs")
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
