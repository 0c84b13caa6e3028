package pgbroker_test

import (
	"context"
	"errors"
	"testing"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/brokertest"
	"github.com/wsroom/wsroom/internal/wstest"
	"github.com/wsroom/wsroom/pgbroker"
)

// Close ends the listener and the trimmer (the goroutine check sees them
// gone) and leaves the pool it was given open: the pool is the caller's.
func TestCloseLeavesThePoolOpenAndEndsItsGoroutines(t *testing.T) {
	wstest.CheckGoroutines(t)
	url := pgURL(t)
	pool := newPool(t, url)
	b, err := pgbroker.New(context.Background(), pool, pgbroker.WithPrefix(uniquePrefix()))
	if err != nil {
		t.Fatal(err)
	}
	defer brokertest.Subscribe(t, b, "r", func([]byte) {})()
	defer brokertest.SubscribeRecorded(t, b, "r", func(wsroom.Position, []byte) {})()
	if n := b.Stats().Rooms; n != 1 {
		t.Fatalf("%d rooms subscribed, want 1", n)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := pool.Ping(context.Background()); err != nil {
		t.Fatalf("the caller's pool after Close: %v, want it open", err)
	}
	if err := b.Publish("r", []byte(`{}`)); !errors.Is(err, pgbroker.ErrClosed) || !errors.Is(err, wsroom.ErrBroker) {
		t.Fatalf("Publish after Close: %v, want ErrClosed wrapping wsroom.ErrBroker", err)
	}
}
