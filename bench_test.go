package wsroom

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"
)

// The benchmarks that guard the hot paths. Run them with
//
//	go test -run '^$' -bench . -benchmem
//
// and compare two runs with benchstat; report ratios measured in one run,
// not absolute times: the machines are noisy.

type benchMsg struct {
	Type      string `json:"type" jsonschema:"enum=message,enum=typing"`
	Username  string `json:"username"`
	Content   string `json:"content,omitempty"`
	Timestamp string `json:"timestamp"`
}

var sample = benchMsg{Type: "message", Username: "alice", Content: "hello, room", Timestamp: "2026-11-28T10:00:00.000Z"}

// discardConn is a socket that accepts every write at once: connection
// subscribers are stubbed at the socket boundary, so the benchmark measures
// encoding, fan-out, queueing and the writer, not the kernel.
type discardConn struct{ net.Conn }

func (discardConn) Write(p []byte) (int, error)            { return len(p), nil }
func (discardConn) SetWriteDeadline(time.Time) error       { return nil }
func (discardConn) SetReadDeadline(time.Time) error        { return nil }
func (discardConn) Read([]byte) (int, error)               { return 0, net.ErrClosed }
func (discardConn) Close() error                           { return nil }
func (discardConn) RemoteAddr() net.Addr                   { return &net.TCPAddr{} }
func (discardConn) SetDeadline(t time.Time) error          { return nil }
func (discardConn) LocalAddr() net.Addr                    { return &net.TCPAddr{} }
func (discardConn) CloseWrite() error                      { return nil }
func (discardConn) SetNoDelay(bool) error                  { return nil }
func (discardConn) SetLinger(int) error                    { return nil }
func (discardConn) SetKeepAlive(bool) error                { return nil }
func (discardConn) SetKeepAlivePeriod(time.Duration) error { return nil }

// discardWriter is the non-blocking writer of a discardConn: the pool's
// path, with the syscall taken out.
type discardWriter struct{}

func (discardWriter) writev(_ *worker, l *frameList) (frames, bytes int, err error) {
	frames, bytes = l.count()
	l.consume(bytes)
	return frames, bytes, nil
}

// stubConns returns n connections writing to discardConn.
func stubConns[M any](n int) ([]*Conn[M], *server) {
	srv := newServer(newConfig([]Option{WithSendQueue(1<<20, 1<<30), WithOverflow(OverflowDrop)}))
	conns := make([]*Conn[M], n)
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	for i := range conns {
		conns[i] = newConn[M](connConfig{server: srv, raw: discardConn{}, direct: discardWriter{}, req: req})
	}
	return conns, srv
}

// drained waits until every connection's writer has written everything.
func drained[M any](conns []*Conn[M]) {
	for _, cc := range conns {
		for {
			cc.conn.mu.Lock()
			idle := !cc.conn.scheduled
			cc.conn.mu.Unlock()
			if idle {
				break
			}
			runtime.Gosched()
		}
	}
}

func BenchmarkPublish(b *testing.B) {
	for _, n := range []int{1, 100, 1000, 10000} {
		b.Run(fmt.Sprintf("conns=%d", n), func(b *testing.B) {
			conns, srv := stubConns[benchMsg](n)
			room := NewRooms[benchMsg]().Room("bench")
			for _, c := range conns {
				if _, err := room.Subscribe(c); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				_ = room.Publish(sample)
			}
			drained(conns)
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/delivery")
			if d := srv.stats.dropped.Load(); d != 0 {
				b.Fatalf("%d deliveries dropped", d)
			}
		})
		b.Run(fmt.Sprintf("funcs=%d", n), func(b *testing.B) {
			room := NewRooms[benchMsg]().Room("bench")
			var got int
			for range n {
				_, _ = room.SubscribeFunc(func(benchMsg) { got++ })
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				_ = room.Publish(sample)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/delivery")
			if got != b.N*n {
				b.Fatalf("%d deliveries, want %d", got, b.N*n)
			}
		})
	}
}

// BenchmarkPublishRecorded is BenchmarkPublish's conns case in a registry
// with history, beside the same without: what recording costs per
// delivery, and the bytes each recorded message keeps.
func BenchmarkPublishRecorded(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		for _, history := range []bool{false, true} {
			b.Run(fmt.Sprintf("conns=%d/history=%v", n, history), func(b *testing.B) {
				conns, srv := stubConns[benchMsg](n)
				var opts []RoomsOption
				if history {
					opts = append(opts, WithHistory(0, 0))
				}
				rooms := NewRooms[benchMsg](opts...)
				room := rooms.Room("bench")
				for _, c := range conns {
					if _, err := room.Subscribe(c); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					_ = room.Publish(sample)
				}
				drained(conns)
				b.StopTimer()
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/delivery")
				if st := rooms.Stats(); st.Recorded > 0 {
					b.ReportMetric(float64(st.HistoryBytes)/float64(min(st.Recorded, DefaultHistorySize)), "B/recorded")
				}
				if d := srv.stats.dropped.Load(); d != 0 {
					b.Fatalf("%d deliveries dropped", d)
				}
			})
		}
	}
}

// BenchmarkRecovery is a member rejoining after missing 1,000 recorded
// messages: the notice, the replay and its own announcement queued.
func BenchmarkRecovery(b *testing.B) {
	rooms := NewRooms[benchMsg](WithHistory(0, 0))
	room := rooms.Room("bench")
	for range DefaultHistorySize {
		_ = room.Publish(sample)
	}
	b.ReportAllocs()
	for range b.N {
		b.StopTimer()
		conns, _ := stubConns[benchMsg](1)
		h := rooms.history.lock("bench")
		conns[0].conn.resume = &Position{Offset: h.last - DefaultHistorySize + 1, Epoch: h.epoch}
		h.mu.Unlock()
		b.StartTimer()
		leave, err := room.Join(conns[0], sample)
		if err != nil {
			b.Fatal(err)
		}
		drained(conns)
		b.StopTimer()
		leave()
		b.StartTimer()
	}
}

var inbound = []byte(`{"type":"message","username":"alice","content":"hello, room","timestamp":"2026-11-28T10:00:00.000Z"}`)

// BenchmarkDecode compares decoding and validating an inbound message with
// plain json.Unmarshal of the same bytes into the same struct.
func BenchmarkDecode(b *testing.B) {
	b.Run("validate+decode", func(b *testing.B) {
		s, err := compileSchemas(newConfig(nil).reflector, new(benchMsg), new(benchMsg))
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for range b.N {
			var m benchMsg
			if bad := s.decode(inbound, &m); bad != nil {
				b.Fatal(bad)
			}
		}
	})
	b.Run("json.Unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			var m benchMsg
			if err := json.Unmarshal(inbound, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkChurn subscribes and unsubscribes in parallel on a few rooms
// (so rooms are created and removed all the time) while a goroutine
// publishes to them; "registry" does only get-or-create lookups.
func BenchmarkChurn(b *testing.B) {
	names := []string{"r0", "r1", "r2", "r3"}
	b.Run("subscribe+unsubscribe", func(b *testing.B) {
		rooms := NewRooms[benchMsg]()
		stop := make(chan struct{})
		published := make(chan int)
		go func() {
			n := 0
			for {
				select {
				case <-stop:
					published <- n
					return
				default:
					_ = rooms.Room(names[n%len(names)]).Publish(sample)
					n++
				}
			}
		}()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				leave, err := rooms.Room(names[i%len(names)]).SubscribeFunc(func(benchMsg) {})
				if err != nil {
					b.Fatal(err)
				}
				leave()
				i++
			}
		})
		b.StopTimer()
		close(stop)
		b.ReportMetric(float64(<-published)/b.Elapsed().Seconds(), "publishes/s")
		if rooms.Len() != 0 {
			b.Fatalf("%d rooms left", rooms.Len())
		}
	})
	b.Run("registry", func(b *testing.B) {
		rooms := NewRooms[benchMsg]()
		for _, n := range names {
			if _, err := rooms.Room(n).SubscribeFunc(func(benchMsg) {}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if rooms.Room(names[i%len(names)]).Len() != 1 {
					b.Fatal("room lost")
				}
				i++
			}
		})
	})
}
