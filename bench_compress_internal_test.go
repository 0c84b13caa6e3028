package wsroom

import (
	"fmt"
	"testing"
)

// BenchmarkPublishCompressed is BenchmarkPublish's conns case with a
// paragraph-long message (about 450 bytes of JSON, the text of
// BenchmarkFanoutCompression), to members that did
// not negotiate compression (plain) and to members that did (deflate),
// side by side: the cost of compressing once per publish, spread over
// the members, and allocations per publish that do not grow with them.
func BenchmarkPublishCompressed(b *testing.B) {
	msg := sample
	msg.Content = "Hey everyone! The release notes for version 2.4 are up on the wiki: " +
		"the new room list, faster search, message reactions and the dark theme that so many of you asked for. " +
		"Please have a look before tomorrow's meeting and add your comments under the section of your team, " +
		"so that we can go through them together. Thanks to all of you who tested the beta last week!"
	for _, deflate := range []bool{false, true} {
		for _, n := range []int{1, 100, 1000} {
			name := "plain"
			if deflate {
				name = "deflate"
			}
			b.Run(fmt.Sprintf("%s/conns=%d", name, n), func(b *testing.B) {
				conns, srv := stubConns[benchMsg](n)
				srv.cfg.compressMin = DefaultCompressionThreshold
				room := NewRooms[benchMsg]().Room("bench")
				for _, c := range conns {
					c.conn.deflate = deflate
					if _, err := room.Subscribe(c); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					_ = room.Publish(msg)
				}
				drained(conns)
				b.StopTimer()
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/delivery")
				b.ReportMetric(float64(srv.stats.bytesOut.Load())/float64(b.N*n), "wire-B/delivery")
				if d := srv.stats.dropped.Load(); d != 0 {
					b.Fatalf("%d deliveries dropped", d)
				}
				if got := srv.stats.compressed.Load(); deflate != (got == int64(b.N*n)) {
					b.Fatalf("%d of %d deliveries compressed", got, b.N*n)
				}
			})
		}
	}
}
