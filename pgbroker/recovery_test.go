package pgbroker_test

import (
	"fmt"
	"net/url"
	"testing"

	"github.com/wsroom/wsroom/brokertest"
	"github.com/wsroom/wsroom/internal/wstest"
	"github.com/wsroom/wsroom/pgbroker"
)

// A listener whose connection is terminated from the server's side
// (pg_terminate_backend: what an operator or a failover does) reads what
// was published while it was away from the log, and hands it to its
// room's members before live traffic: every message reaches the member
// behind it exactly once, in order, and its WebSocket stays open.
//
// The first drop is held open on purpose: B's role may not log in for a
// while, so that B is away while A publishes hundreds of messages. The
// second is a bare termination, in the middle of A's stream.
func TestListenerDropLosesNothingAndDuplicatesNothing(t *testing.T) {
	wstest.CheckGoroutines(t)
	const n = 2000
	base := pgURL(t)
	admin := newPool(t, base)
	prefix := pgbroker.WithPrefix(uniquePrefix())
	a := newBroker(t, base, prefix)
	role := uniquePrefix()
	exec(t, admin, "CREATE ROLE "+role+" LOGIN")
	t.Cleanup(func() { exec(t, admin, "DROP OWNED BY "+role+"; DROP ROLE "+role) })
	exec(t, admin, "GRANT SELECT, INSERT, UPDATE, DELETE ON "+prefixOf(t, a)+"_rooms, "+prefixOf(t, a)+"_log TO "+role)
	b := newBroker(t, asUser(t, base, role), prefix, pgbroker.WithoutSchemaSetup())

	A, B := brokertest.StartInstance(t, a), brokertest.StartInstance(t, b)
	ca, cb := A.Join(t, "r"), B.Join(t, "r")
	brokertest.Bridge(t, ca, cb)
	drain(t, cb)

	room := A.Rooms.Room("r")
	away := int64(0)
	for i := range n {
		switch i {
		case 500: // B goes away, and stays away until i == 1000
			exec(t, admin, "ALTER ROLE "+role+" NOLOGIN")
			errs := b.Stats().ConnErrors
			terminateListener(t, admin, b)
			wstest.WaitFor(t, "B to fail to connect again", func() bool { return b.Stats().ConnErrors >= errs+2 })
		case 1000:
			away = int64(i - 500)
			exec(t, admin, "ALTER ROLE "+role+" LOGIN")
		case 1500:
			terminateListener(t, admin, b)
		}
		if err := room.Publish(brokertest.Msg{From: "a", Seq: i}); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	for i := range n {
		var m brokertest.Msg
		cb.JSON(t, &m)
		if m.From != "a" || m.Seq != i {
			t.Fatalf("B's member got %+v, want message %d from a", m, i)
		}
	}
	marker := brokertest.Msg{From: "marker", Seq: n}
	if err := room.Publish(marker); err != nil {
		t.Fatal(err)
	}
	var m brokertest.Msg
	if cb.JSON(t, &m); m != marker {
		t.Fatalf("B's member got %+v after the %d messages, want the marker: a message arrived twice", m, n)
	}
	st := b.Stats()
	t.Logf("B: %+v", st)
	if st.FromLog < away || st.Missed != 0 {
		t.Fatalf("B read %d messages from the log (want at least the %d published while it was away) and missed %d", st.FromLog, away, st.Missed)
	}
}

// prefixOf returns the prefix b was made with.
func prefixOf(t testing.TB, b *pgbroker.Broker) string {
	t.Helper()
	return b.Prefix()
}

// asUser returns base with its user replaced.
func asUser(t testing.TB, base, user string) string {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(user)
	return u.String()
}

// drain sends a marker through c and discards what it receives until the
// marker comes back.
func drain(t testing.TB, c *brokertest.Client) {
	t.Helper()
	marker := brokertest.Msg{From: fmt.Sprintf("drain-%p", c), Seq: -1}
	c.Send(t, marker)
	for {
		var m brokertest.Msg
		if c.JSON(t, &m); m == marker {
			return
		}
	}
}
