package brokertest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsroom/wsroom"
)

// atOnce bounds how long a closed Broker may take to refuse a call: it
// must not try its server, nor wait for a publish timeout.
const atOnce = 100 * time.Millisecond

// closeSemantics checks Close on the second broker of a pair, while the
// first publishes into one of its rooms: Close returns nil, and so does a
// second Close; once it has returned no deliver func is called; and from
// then on Publish, Record and History fail at once with an error wrapping
// wsroom.ErrBroker, while Subscribe and SubscribeRecorded return a closed
// ready and deliver nothing. A Broker without a Close method is skipped.
func closeSemantics(t *testing.T, pair Pair) {
	a, b := pair(t)
	closer, ok := b.(io.Closer)
	if !ok {
		t.Skipf("%T has no Close method: nothing to check", b)
	}
	var closedAt atomic.Bool // set once Close has returned
	var late atomic.Int64    // deliveries from then on
	in := NewInbox(64)
	deliver := func(p []byte) {
		if closedAt.Load() {
			late.Add(1)
		}
		select { // never blocks: Close may be waiting for this delivery
		case in.ch <- append([]byte(nil), p...):
		default:
		}
	}
	cancel := Subscribe(t, b, "closing", deliver)
	Await(t, a, "closing", in)

	// a publishes all along, and 100 times more once b's Close has
	// returned: b closes while a's messages are arriving.
	published := make(chan error, 1)
	go func() {
		for i, since := 0, 0; since < 100; i++ {
			closed := closedAt.Load()
			if err := a.Publish("closing", fmt.Appendf(nil, `{"seq":%d}`, i)); err != nil {
				published <- fmt.Errorf("a's publish %d: %w", i, err)
				return
			}
			if closed {
				since++
			}
		}
		published <- nil
	}()
	in.Next(t) // a's messages are arriving
	if err := closer.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	closedAt.Store(true)
	if err := closer.Close(); err != nil {
		t.Errorf("second Close: %v, want nil", err)
	}
	cancel() // harmless after Close

	refusedAtOnce(t, "Publish", func() error { return b.Publish("closing", []byte(`{"after":"close"}`)) })
	count := func([]byte) { late.Add(1) }
	defer subscribedNothing(t, "Subscribe", func() (func(), <-chan struct{}) { return b.Subscribe("after-close", count) })()
	if hb, ok := b.(wsroom.HistoryBroker); ok {
		refusedAtOnce(t, "Record", func() error { _, err := hb.Record("closing", []byte(`{"after":"close"}`)); return err })
		refusedAtOnce(t, "History", func() error {
			_, _, _, err := hb.History(context.Background(), "closing", wsroom.Position{}, 10)
			return err
		})
		defer subscribedNothing(t, "SubscribeRecorded", func() (func(), <-chan struct{}) {
			return hb.SubscribeRecorded("after-close", func(wsroom.Position, []byte) { late.Add(1) })
		})()
	}
	for i := range 20 { // into the room subscribed after Close too
		if err := a.Publish("after-close", fmt.Appendf(nil, `{"seq":%d}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	if n := late.Load(); n != 0 {
		t.Fatalf("%d deliveries after Close returned", n)
	}
}

// refusedAtOnce checks that call fails within atOnce with an error
// wrapping wsroom.ErrBroker.
func refusedAtOnce(t *testing.T, name string, call func() error) {
	t.Helper()
	start := time.Now()
	err := call()
	if took := time.Since(start); took > atOnce {
		t.Errorf("%s after Close took %v, want at most %v", name, took, atOnce)
	}
	if !errors.Is(err, wsroom.ErrBroker) {
		t.Errorf("%s after Close returned %v, want an error wrapping wsroom.ErrBroker", name, err)
	}
}

// subscribedNothing checks that subscribe returns at once with its ready
// closed (or nil); it returns the cancel func.
func subscribedNothing(t *testing.T, name string, subscribe func() (func(), <-chan struct{})) (cancel func()) {
	t.Helper()
	start := time.Now()
	cancel, ready := subscribe()
	if took := time.Since(start); took > atOnce {
		t.Errorf("%s after Close took %v, want at most %v", name, took, atOnce)
	}
	if ready != nil {
		select {
		case <-ready:
		default:
			t.Errorf("%s after Close: ready not closed", name)
		}
	}
	return cancel
}
