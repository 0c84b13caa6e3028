package pgbroker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/wsroom/wsroom/brokertest"
	"github.com/wsroom/wsroom/internal/wstest"
	"github.com/wsroom/wsroom/pgbroker"
)

// Trim keeps each room's latest messages, and only so old; a room whose
// log is empty and which has been idle that long loses its row, and its
// offsets restart in a new epoch, which a listener follows.
func TestTrimKeepsTheLatestMessagesAndRestartsIdleRooms(t *testing.T) {
	wstest.CheckGoroutines(t)
	url, name := pgURL(t), uniquePrefix()
	admin := newPool(t, url)
	opts := []pgbroker.Option{pgbroker.WithPrefix(name), pgbroker.WithHistory(3, time.Hour)}
	a, b := newBroker(t, url, opts...), newBroker(t, url, opts...)
	for i := range 10 {
		if err := a.Publish("r", fmt.Appendf(nil, `{"seq":%d}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	if err := a.Trim(ctx); err != nil {
		t.Fatal(err)
	}
	if offs := count(t, admin, "SELECT count(*) FROM "+name+"_log WHERE off > 7"); offs != 3 {
		t.Fatalf("%d of the 3 latest messages kept", offs)
	}
	if n := count(t, admin, "SELECT count(*) FROM "+name+"_log"); n != 3 {
		t.Fatalf("%d messages kept, want 3", n)
	}

	in := brokertest.NewInbox(64)
	defer brokertest.Subscribe(t, b, "r", in.Deliver)()
	brokertest.Await(t, a, "r", in)
	// Age everything: the next trim empties the log and drops the room's
	// row, so the next publish starts a new epoch at offset 1.
	exec(t, admin, "UPDATE "+name+"_log SET at = at - interval '2 hours'")
	exec(t, admin, "UPDATE "+name+"_rooms SET touched = touched - interval '2 hours'")
	if err := a.Trim(ctx); err != nil {
		t.Fatal(err)
	}
	if n := count(t, admin, "SELECT count(*) FROM "+name+"_rooms"); n != 0 {
		t.Fatalf("%d rooms' rows left after trimming idle rooms", n)
	}
	for i := range 3 {
		if err := a.Publish("r", fmt.Appendf(nil, `{"epoch2":%d}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		if got, want := string(in.Next(t)), fmt.Sprintf(`{"epoch2":%d}`, i); got != want {
			t.Fatalf("after the new epoch got %s, want %s", got, want)
		}
	}
	if st := b.Stats(); st.Missed != 0 {
		t.Fatalf("the listener counted %d missed across the new epoch", st.Missed)
	}
}

// count runs a query of one integer.
func count(t testing.TB, pool *pgxpool.Pool, sql string) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), sql).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
