package pgbroker_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/brokertest"
	"github.com/wsroom/wsroom/internal/wstest"
	"github.com/wsroom/wsroom/pgbroker"
)

func TestBrokerPassesTheHistoryBrokerContract(t *testing.T) {
	wstest.CheckGoroutines(t)
	brokertest.RunHistory(t, historyPair(pgURL(t)))
}

// Two processes record into one room while the listener of one of them
// is terminated twice, the first time kept out while hundreds of records
// are made: its recorded subscription receives every record, its own
// included, once, at consecutive offsets, with the payload each was
// recorded with, then the next record.
func TestListenerDropDeliversEveryRecordOnceInOrder(t *testing.T) {
	wstest.CheckGoroutines(t)
	const each = 1000
	base := pgURL(t)
	admin := newPool(t, base)
	name := uniquePrefix()
	a := newBroker(t, base, pgbroker.WithPrefix(name))
	b, away := awayBroker(t, admin, base, name)
	in := brokertest.NewRecordedInbox(4 * each)
	defer brokertest.SubscribeRecorded(t, b, "r", in.Deliver)()

	var mu sync.Mutex
	recorded := map[wsroom.Position]string{}
	record := func(br *pgbroker.Broker, from string, i int) {
		p := fmt.Sprintf(`{"from":%q,"i":%d}`, from, i)
		pos, err := br.Record("r", []byte(p))
		if err != nil {
			t.Errorf("%s: record %d: %v", from, i, err)
			return
		}
		mu.Lock()
		recorded[pos] = p
		mu.Unlock()
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // b records too, all along, from its pool: only its listener goes away
		defer wg.Done()
		for i := range each {
			record(b, "b", i)
		}
	}()
	for i := range each {
		switch i {
		case 200:
			away.leave(t, b)
		case 500:
			away.comeBack(t, b)
		case 800:
			terminateListener(t, admin, b)
		}
		record(a, "a", i)
	}
	wg.Wait()
	var first wsroom.Position
	for i := range 2 * each {
		got := in.Next(t)
		if i == 0 {
			first = got.Position
		}
		want := wsroom.Position{Offset: first.Offset + uint64(i), Epoch: first.Epoch}
		if got.Position != want || string(got.Payload) != recorded[want] {
			t.Fatalf("record %d: got %+v %s, want %+v %s", i, got.Position, got.Payload, want, recorded[want])
		}
	}
	last, err := a.Record("r", []byte(`{"last":true}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := in.Next(t); got.Position != last {
		t.Fatalf("after the %d records got %+v %s, want the last at %+v: one came twice", 2*each, got.Position, got.Payload, last)
	}
	if st := b.Stats(); st.CaughtUp < 300 || st.Missed != 0 || st.Gaps != 0 {
		t.Fatalf("b caught up on %d records from the log (want at least the 300 made while it was away), missed %d, gaps %d", st.CaughtUp, st.Missed, st.Gaps)
	}
}

// Publish is for ephemeral messages: a room's publishes never reach its
// History or its recorded subscriptions, and its records never reach its
// plain subscriptions; each kind keeps offsets of its own.
func TestPublishesAreNeverInHistoryAndRecordsNeverPublished(t *testing.T) {
	wstest.CheckGoroutines(t)
	url := pgURL(t)
	p := pgbroker.WithPrefix(uniquePrefix())
	a, b := newBroker(t, url, p), newBroker(t, url, p)
	plain, rec := brokertest.NewInbox(64), brokertest.NewRecordedInbox(64)
	defer brokertest.Subscribe(t, b, "r", plain.Deliver)()
	defer brokertest.SubscribeRecorded(t, b, "r", rec.Deliver)()
	for i := range 5 {
		if err := a.Publish("r", fmt.Appendf(nil, `{"typing":%d}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	pos, err := a.Record("r", []byte(`{"text":"kept"}`))
	if err != nil {
		t.Fatal(err)
	}
	if pos.Offset != 1 {
		t.Fatalf("the room's first record is at offset %d after 5 publishes, want 1", pos.Offset)
	}
	if err := a.Publish("r", []byte(`{"typing":"marker"}`)); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if got := string(plain.Next(t)); got != fmt.Sprintf(`{"typing":%d}`, i) {
			t.Fatalf("plain subscription got %s, want publish %d", got, i)
		}
	}
	if got := string(plain.Next(t)); got != `{"typing":"marker"}` {
		t.Fatalf("plain subscription got %s, want the marker: a record reached it", got)
	}
	if got := rec.Next(t); got.Position != pos || string(got.Payload) != `{"text":"kept"}` {
		t.Fatalf("recorded subscription got %+v %s, want the record at %+v", got.Position, got.Payload, pos)
	}
	if n := b.Stats().Rooms; n != 1 {
		t.Fatalf("Stats.Rooms is %d for one room subscribed both ways, want 1", n)
	}
	msgs, epoch, complete := history(t, b, "r", wsroom.Position{Epoch: pos.Epoch}, 100)
	if epoch != pos.Epoch || !complete || len(msgs) != 1 || string(msgs[0].Payload) != `{"text":"kept"}` {
		t.Fatalf("History: %+v, epoch %q, complete %v; want the one record", msgs, epoch, complete)
	}
}

// The log keeps each room's latest records (WithHistory): a position
// older than that is not recovered; one within it is.
func TestTrimmedHistoryIsNotComplete(t *testing.T) {
	wstest.CheckGoroutines(t)
	url := pgURL(t)
	a := newBroker(t, url, pgbroker.WithPrefix(uniquePrefix()), pgbroker.WithHistory(3, time.Hour))
	var epoch string
	for range 10 {
		pos, err := a.Record("r", []byte(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		epoch = pos.Epoch
	}
	if err := a.Trim(context.Background()); err != nil {
		t.Fatal(err)
	}
	for since, want := range map[uint64]struct {
		n        int
		complete bool
	}{0: {0, false}, 6: {0, false}, 7: {3, true}, 9: {1, true}, 10: {0, true}, 11: {0, false}} {
		msgs, got, complete := history(t, a, "r", wsroom.Position{Offset: since, Epoch: epoch}, 1000)
		if got != epoch || complete != want.complete || len(msgs) != want.n {
			t.Errorf("since %d: %d messages, epoch %q, complete %v; want %d, %q, %v", since, len(msgs), got, complete, want.n, epoch, want.complete)
		}
	}
}

// A room never recorded in is given its epoch by History, which its first
// record then takes at offset 1; after the tables are emptied (a reset),
// the room starts again in another epoch, which History reports and the
// next record and its subscribers follow.
func TestResetStartsANewEpoch(t *testing.T) {
	wstest.CheckGoroutines(t)
	url, name := pgURL(t), uniquePrefix()
	admin := newPool(t, url)
	a, b := newBroker(t, url, pgbroker.WithPrefix(name)), newBroker(t, url, pgbroker.WithPrefix(name))
	in := brokertest.NewRecordedInbox(64)
	defer brokertest.SubscribeRecorded(t, b, "r", in.Deliver)()
	_, epoch, complete := history(t, b, "r", wsroom.Position{Epoch: "none"}, 10)
	first, err := a.Record("r", []byte(`{"n":1}`))
	if err != nil {
		t.Fatal(err)
	}
	if complete || first != (wsroom.Position{Offset: 1, Epoch: epoch}) {
		t.Fatalf("History of a new room said epoch %q (complete %v); its first record is at %+v", epoch, complete, first)
	}
	if got := in.Next(t); got.Position != first {
		t.Fatalf("got %+v, want %+v", got.Position, first)
	}
	exec(t, admin, "TRUNCATE "+name+"_rooms, "+name+"_log")
	msgs, reset, complete := history(t, b, "r", first, 10)
	if reset == epoch || complete || len(msgs) != 0 {
		t.Fatalf("after the reset History from %+v: %d messages, epoch %q, complete %v; want none, a new epoch, not complete", first, len(msgs), reset, complete)
	}
	next, err := a.Record("r", []byte(`{"n":2}`))
	if err != nil {
		t.Fatal(err)
	}
	if next != (wsroom.Position{Offset: 1, Epoch: reset}) {
		t.Fatalf("the first record after the reset is at %+v, want offset 1 of %q", next, reset)
	}
	if got := in.Next(t); got.Position != next || string(got.Payload) != `{"n":2}` {
		t.Fatalf("subscriber got %+v %s, want %+v", got.Position, got.Payload, next)
	}
}

// A listener kept away while the log trims records it had not delivered
// cannot hand them over in their place: the room's history starts a new
// epoch, which every process's subscribers follow from its first record.
// Nobody sees a gap within an epoch.
func TestRecordsTrimmedWhileAwayStartANewEpoch(t *testing.T) {
	wstest.CheckGoroutines(t)
	base := pgURL(t)
	admin := newPool(t, base)
	name := uniquePrefix()
	retention := pgbroker.WithHistory(3, time.Hour)
	a := newBroker(t, base, pgbroker.WithPrefix(name), retention)
	b, away := awayBroker(t, admin, base, name, retention)
	inA, inB := brokertest.NewRecordedInbox(64), brokertest.NewRecordedInbox(64)
	defer brokertest.SubscribeRecorded(t, a, "r", inA.Deliver)()
	defer brokertest.SubscribeRecorded(t, b, "r", inB.Deliver)()
	old, err := a.Record("r", []byte(`{"n":0}`))
	if err != nil {
		t.Fatal(err)
	}
	inA.Next(t)
	inB.Next(t)
	away.leave(t, b)
	for i := range 10 {
		if _, err := a.Record("r", fmt.Appendf(nil, `{"n":%d}`, i+1)); err != nil {
			t.Fatal(err)
		}
		inA.Next(t)
	}
	if err := a.Trim(context.Background()); err != nil {
		t.Fatal(err)
	}
	away.comeBack(t, b)
	wstest.WaitFor(t, "b to give the room a new epoch", func() bool { return b.Stats().Gaps == 1 })
	pos, err := a.Record("r", []byte(`{"new":1}`))
	if err != nil {
		t.Fatal(err)
	}
	if pos.Epoch == old.Epoch || pos.Offset != 1 {
		t.Fatalf("the next record is at %+v, want offset 1 of a new epoch", pos)
	}
	for who, in := range map[string]*brokertest.RecordedInbox{"a": inA, "b": inB} {
		if got := in.Next(t); got.Position != pos || string(got.Payload) != `{"new":1}` {
			t.Fatalf("%s got %+v %s, want %+v", who, got.Position, got.Payload, pos)
		}
	}
	if _, epoch, complete := history(t, a, "r", old, 100); epoch != pos.Epoch || complete {
		t.Fatalf("History from the old epoch: epoch %q, complete %v; want %q, false", epoch, complete, pos.Epoch)
	}
}

// Records of rooms whatever their names (quotes, NUL, invalid UTF-8, 100
// KB, and payloads beyond a notification's limit) stay in their rooms.
func TestRecordsOfHostileRoomNamesStayApart(t *testing.T) {
	wstest.CheckGoroutines(t)
	url := pgURL(t)
	p := pgbroker.WithPrefix(uniquePrefix())
	a, b := newBroker(t, url, p), newBroker(t, url, p)
	names := []string{"", "r", `r'); DROP TABLE x; --`, `"r"`, "r\x00s", "\xff\xfe", strings.Repeat("x", 100_000), "h", "-", "_"}
	big := []byte(`{"big":"` + strings.Repeat("y", 20_000) + `"}`)
	inboxes := make([]*brokertest.RecordedInbox, len(names))
	for i, name := range names {
		inboxes[i] = brokertest.NewRecordedInbox(4)
		defer brokertest.SubscribeRecorded(t, b, name, inboxes[i].Deliver)()
	}
	for i, name := range names {
		payload := fmt.Appendf(nil, `{"room":%d}`, i)
		if i%2 == 1 {
			payload = big
		}
		pos, err := a.Record(name, payload)
		if err != nil {
			t.Fatalf("room %d: %v", i, err)
		}
		if got := inboxes[i].Next(t); got.Position != pos || string(got.Payload) != string(payload) {
			t.Fatalf("room %d got %+v (%d bytes), want %+v", i, got.Position, len(got.Payload), pos)
		}
		msgs, _, complete := history(t, b, name, wsroom.Position{Epoch: pos.Epoch}, 10)
		if !complete || len(msgs) != 1 || string(msgs[0].Payload) != string(payload) {
			t.Fatalf("room %d: History has %d messages (complete %v), want its one record", i, len(msgs), complete)
		}
	}
}

// With the database down, Record fails within its timeout, and History
// within its context.
func TestRecordFailsInTimeWhileTheDatabaseIsDown(t *testing.T) {
	wstest.CheckGoroutines(t)
	srv := ownServer(t)
	const timeout = 300 * time.Millisecond
	a := newBroker(t, srv.URL, pgbroker.WithPrefix(uniquePrefix()), pgbroker.WithPublishTimeout(timeout))
	if _, err := a.Record("r", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	start := time.Now()
	if _, err := a.Record("r", []byte(`{}`)); err == nil || !strings.Contains(err.Error(), `record in room "r"`) {
		t.Fatalf("Record with the database down returned %v, want an error naming the room", err)
	}
	if d := time.Since(start); d > timeout+time.Second {
		t.Fatalf("Record with the database down took %v, want about %v at most", d, timeout)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if _, _, _, err := a.History(ctx, "r", wsroom.Position{}, 10); err == nil {
		t.Fatal("History with the database down succeeded")
	}
	if st := a.Stats(); st.RecordErrors != 1 || st.Recorded != 1 {
		t.Fatalf("stats %+v, want 1 record and 1 record error", st)
	}
}

// history calls b.History within wstest.Timeout, failing the test on an
// error.
func history(t testing.TB, b wsroom.HistoryBroker, room string, since wsroom.Position, limit int) ([]wsroom.Recorded, string, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wstest.Timeout)
	defer cancel()
	msgs, epoch, complete, err := b.History(ctx, room, since, limit)
	if err != nil {
		t.Fatal(err)
	}
	return msgs, epoch, complete
}

// An absence keeps a Broker's listener out of the server: its role may
// not log in, so the listener fails to connect again until comeBack; its
// pool's connections stay up.
type absence struct {
	admin *pgxpool.Pool
	role  string
}

// awayBroker returns a Broker of the tables of prefix that logs in as a
// role of its own, and the absence that keeps its listener out.
func awayBroker(t testing.TB, admin *pgxpool.Pool, base, prefix string, opts ...pgbroker.Option) (*pgbroker.Broker, *absence) {
	t.Helper()
	sql, _ := pgbroker.SchemaSQL(prefix)
	exec(t, admin, sql)
	role := uniquePrefix()
	exec(t, admin, "CREATE ROLE "+role+" LOGIN")
	t.Cleanup(func() { exec(t, admin, "DROP OWNED BY "+role+"; DROP ROLE "+role) })
	exec(t, admin, "GRANT SELECT, INSERT, UPDATE, DELETE ON "+prefix+"_rooms, "+prefix+"_log TO "+role)
	opts = append([]pgbroker.Option{pgbroker.WithPrefix(prefix), pgbroker.WithoutSchemaSetup()}, opts...)
	return newBroker(t, asUser(t, base, role), opts...), &absence{admin: admin, role: role}
}

// leave terminates b's listener and waits until it has failed to connect
// again twice.
func (a *absence) leave(t testing.TB, b *pgbroker.Broker) {
	t.Helper()
	exec(t, a.admin, "ALTER ROLE "+a.role+" NOLOGIN")
	errs := b.Stats().ConnErrors
	terminateListener(t, a.admin, b)
	wstest.WaitFor(t, "the listener to fail to connect again", func() bool { return b.Stats().ConnErrors >= errs+2 })
}

// comeBack lets b's listener log in again, and waits until it has.
func (a *absence) comeBack(t testing.TB, b *pgbroker.Broker) {
	t.Helper()
	exec(t, a.admin, "ALTER ROLE "+a.role+" LOGIN")
	wstest.WaitFor(t, "the listener to connect again", func() bool {
		return count(t, a.admin, "SELECT count(*) FROM pg_stat_activity WHERE application_name = '"+b.ApplicationName()+"'") == 1
	})
}
