package wsroom

import (
	"fmt"
	"testing"
)

// joinSizes are the rooms BenchmarkJoin joins: a join's own cost must be
// the same in each.
var joinSizes = []int{100, 1000, 10000, 50000}

// BenchmarkJoin is one connection joining a room that already holds N
// members and leaving it again. "subscribe" is the membership alone
// (Subscribe, then its leave func): what the room's set costs, which must
// not grow with N. "announce" is Join with an announcement, which reaches
// all N members: ns/delivery is what the library adds per member reached.
//
//	go test -run '^$' -bench BenchmarkJoin -benchmem
func BenchmarkJoin(b *testing.B) {
	for _, n := range joinSizes {
		b.Run(fmt.Sprintf("subscribe/members=%d", n), func(b *testing.B) {
			room, conns := roomOf(b, n)
			joiner := conns[n]
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				leave, err := room.Subscribe(joiner)
				if err != nil {
					b.Fatal(err)
				}
				leave()
			}
			b.StopTimer()
			if got := room.Len(); got != n {
				b.Fatalf("room holds %d, want %d", got, n)
			}
		})
	}
	for _, n := range joinSizes[:3] {
		b.Run(fmt.Sprintf("announce/members=%d", n), func(b *testing.B) {
			room, conns := roomOf(b, n)
			joiner := conns[n]
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				leave, err := room.Join(joiner, sample)
				if err != nil {
					b.Fatal(err)
				}
				leave()
			}
			drained(conns)
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/delivery")
		})
	}
}

// BenchmarkJoinStorm is a room filling up: N connections join one after
// another, each announced to everyone already in, then all leave. The N²/2
// deliveries are inherent; ns/delivery, flat in N, says the library adds
// nothing per join that grows with the room.
//
//	go test -run '^$' -bench BenchmarkJoinStorm -benchmem -benchtime 3x
func BenchmarkJoinStorm(b *testing.B) {
	for _, n := range []int{100, 1000, 5000} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			conns, srv := stubConns[benchMsg](n)
			room := NewRooms[benchMsg]().Room("storm")
			leaves := make([]func(), n)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				for i, c := range conns {
					leave, err := room.Join(c, sample)
					if err != nil {
						b.Fatal(err)
					}
					leaves[i] = leave
				}
				drained(conns)
				for _, leave := range leaves {
					leave()
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/join")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n*(n+1)/2), "ns/delivery")
			if d := srv.stats.dropped.Load(); d != 0 {
				b.Fatalf("%d deliveries dropped", d)
			}
		})
	}
}

// roomOf returns a room holding n connections, and those n and one more
// that is not in the room.
func roomOf(b *testing.B, n int) (*Room[benchMsg], []*Conn[benchMsg]) {
	b.Helper()
	conns, _ := stubConns[benchMsg](n + 1)
	room := NewRooms[benchMsg]().Room("join")
	for _, c := range conns[:n] {
		if _, err := room.Subscribe(c); err != nil {
			b.Fatal(err)
		}
	}
	return room, conns
}
