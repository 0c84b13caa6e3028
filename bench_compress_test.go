//go:build linux

package wsroom_test

import (
	"fmt"
	"testing"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/loadgen"
)

// BenchmarkFanoutCompression is BenchmarkFanout's fan-out of a chat
// message of about 450 bytes of JSON, to one room of N clients that all
// offer permessage-deflate as browsers do, by wsroom without compression
// and with WithCompression (the default threshold), side by side in one
// run: wire-B/delivery shows the bytes compression saves, cpu-ns/delivery
// what it costs the server (one compression per message, whatever N).
// The clients inflate with gws's client, a compressor per connection
// (about 0.8 MiB each in the client process). Run with -benchtime=Nx
// (e.g. 2000x).
func BenchmarkFanoutCompression(b *testing.B) {
	for _, v := range []struct {
		name string
		opts []wsroom.Option
	}{
		{"plain", nil},
		{"deflate", []wsroom.Option{wsroom.WithCompression(0)}},
	} {
		b.Run(v.name, func(b *testing.B) {
			const n = 500
			var fx *fanout
			b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
				if fx == nil {
					s := mustSessionFor(b, newWsroomHub, hubConfig{conns: n, options: v.opts}, loadgen.Config{Conns: n, Deflate: loadgen.OfferDeflate})
					fx = &fanout{session: s, text: chatParagraph}
					if err := connect(fx.hub, fx.proc, n); err != nil {
						b.Fatal(err)
					}
				}
				fx.run(b)
			})
			if fx != nil {
				if err := fx.close(); err != nil {
					b.Errorf("close: %v", err)
				}
			}
		})
	}
}

// chatParagraph is the text of a chat message of a paragraph, as people
// write them: about 360 bytes of prose.
const chatParagraph = "Hey everyone! The release notes for version 2.4 are up on the wiki: " +
	"the new room list, faster search, message reactions and the dark theme that so many of you asked for. " +
	"Please have a look before tomorrow's meeting and add your comments under the section of your team, " +
	"so that we can go through them together. Thanks to all of you who tested the beta last week!"
