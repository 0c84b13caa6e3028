package redisbroker_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/wsroom/wsroom/brokertest"
	"github.com/wsroom/wsroom/internal/wstest"
	"github.com/wsroom/wsroom/redisbroker"
)

// go-redis has lost RESP3 pub/sub messages: before v9.20.1 one whose
// push header straddled the end of the read buffer was misread and
// dropped (go-redis issue 3839), and v9.20.1 and v9.21.0 could wait for
// bytes that never came after a short frame (issue 3935). A subscriber
// that falls behind reads full buffers of frames packed back to back, so
// the buffer's end falls inside frames at every offset: here the
// subscriber's first delivery blocks until 2,000 messages are published,
// with payloads of varying length, to rooms with a one-byte name, a
// 210-byte one and a 1,021-byte one, read with go-redis's default 32 KiB
// buffer and with a 512-byte one. Every message must arrive exactly
// once, in order.
func TestOrderHoldsAcrossReadBufferBoundaries(t *testing.T) {
	srv := ownRedis(t) // the prefix is not unique
	rooms := []struct{ name, room string }{
		{"short", "r"},
		{"long", strings.Repeat("long-room-", 21)},
		{"odd", strings.Repeat("o", 1021)}, // frames longer than the small buffer
	}
	buffers := []struct {
		name string
		size int
	}{{"default", 0}, {"512B", 512}}
	for _, p := range protocols {
		for _, buf := range buffers {
			for _, r := range rooms {
				t.Run(p.name+"/"+buf.name+"/"+r.name, func(t *testing.T) {
					wstest.CheckGoroutines(t)
					sub := append(slices.Clone(p.opts), func(o *redis.Options) { o.ReadBufferSize = buf.size })
					prefix := redisbroker.WithPrefix("p")
					a := newBroker(t, srv.Addr, p.opts, prefix)
					b := newBroker(t, srv.Addr, sub, prefix)
					for range 2 {
						burst(t, a, b, r.room, 2000)
					}
				})
			}
		}
	}
}

// burst has a publish n messages to room while b's subscriber is blocked,
// then checks that b delivers each once, in order, and nothing after.
func burst(t *testing.T, a, b *redisbroker.Broker, room string, n int) {
	t.Helper()
	gate := make(chan struct{})
	var open sync.Once
	release := func() { open.Do(func() { close(gate) }) }
	defer release() // a failing test must not leave the receive goroutine blocked
	in := brokertest.NewInbox(n + 1)
	first := true // deliver runs on one goroutine
	cancel := brokertest.Subscribe(t, b, room, func(p []byte) {
		if first {
			first = false
			select {
			case <-gate:
			case <-time.After(wstest.Timeout):
			}
		}
		in.Deliver(p)
	})
	defer cancel()
	for i := range n {
		msg := fmt.Appendf(nil, `{"seq":%d,"pad":"%s"}`, i, strings.Repeat("x", i%97))
		if err := a.Publish(room, msg); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	release()
	for i := range n {
		var m struct{ Seq int }
		if p := in.Next(t); json.Unmarshal(p, &m) != nil || m.Seq != i {
			t.Fatalf("message %d: got %.60s", i, p)
		}
	}
	if err := a.Publish(room, []byte(`{"seq":-1}`)); err != nil {
		t.Fatal(err)
	}
	if p := in.Next(t); string(p) != `{"seq":-1}` {
		t.Fatalf("after %d messages got %.60s, want the marker: a message arrived twice", n, p)
	}
}
