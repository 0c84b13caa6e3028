//go:build linux

package wsroom_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/wsroom/wsroom/internal/wstest"
)

// TestPeersServeTheSameFrames checks that the three servers BenchmarkPeers
// compares serve the chat contract of bench_hubs_test.go with the same
// bytes: each join announced to the room, the joiner's own first; a
// member's message published to every member with its room and sender;
// the benchmark's Publish delivered as encoding/json writes it. A Bun not
// installed skips its part, and fails it under WSROOM_CI.
func TestPeersServeTheSameFrames(t *testing.T) {
	for _, p := range allPeers {
		t.Run(p.name, func(t *testing.T) {
			if p.check != nil {
				p.check(t)
			}
			h, err := p.newHub(hubConfig{conns: 2, announce: true})
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := h.Close(context.Background()); err != nil {
					t.Error(err)
				}
			}()
			checkContract(t, h)
		})
	}
}

func checkContract(t *testing.T, h hub) {
	frame := func(m e2eMsg) string {
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	expect := func(c *wstest.Client, want string) {
		t.Helper()
		if got := string(c.Message(t)); got != want {
			t.Fatalf("got  %s\nwant %s", got, want)
		}
	}
	joined3 := frame(e2eMsg{Type: "joined", Room: "r7", From: 3})
	joined4 := frame(e2eMsg{Type: "joined", Room: "r7", From: 4})

	url := "http" + strings.TrimPrefix(h.URL(), "ws") // wstest dials http:// URLs
	a := wstest.Dial(t, url+"?room=r7&id=3")
	expect(a, joined3)
	b := wstest.Dial(t, url+"?room=r7&id=4")
	expect(b, joined4) // its own join first
	expect(a, joined4)

	a.SendText(t, `{"type":"message","text":"hi there","seq":5,"sent":1700000000123456}`)
	chat := frame(e2eMsg{Type: "message", Room: "r7", From: 3, Text: "hi there", Seq: 5, Sent: 1700000000123456})
	expect(a, chat)
	expect(b, chat)

	pub := e2eMsg{Type: "message", Room: "r7", From: fanoutPublisher, Text: benchText, Seq: 9, Sent: 1700000000654321}
	if err := h.Publish(&pub); err != nil {
		t.Fatal(err)
	}
	expect(a, frame(pub))
	expect(b, frame(pub))

	if err := h.Problems(); err != nil {
		t.Fatal(err)
	}
	if n := h.Members(); n != 2 {
		t.Fatalf("%d members, want 2", n)
	}
}
