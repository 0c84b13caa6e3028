package pgbroker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/brokertest"
	"github.com/wsroom/wsroom/internal/tcpproxy"
	"github.com/wsroom/wsroom/internal/wstest"
	"github.com/wsroom/wsroom/pgbroker"
)

// presencePair returns brokertest's PresencePair: two processes on the
// server at url, with a prefix of their own.
func presencePair(url string, opts ...pgbroker.Option) brokertest.PresencePair {
	return func(t *testing.T) (a, b wsroom.PresenceBroker) {
		opts := append([]pgbroker.Option{pgbroker.WithPrefix(uniquePrefix())}, opts...)
		return newBroker(t, url, opts...), newBroker(t, url, opts...)
	}
}

func TestPresenceContract(t *testing.T) {
	wstest.CheckGoroutines(t)
	brokertest.RunPresence(t, presencePair(pgURL(t)))
}

// A PostgreSQL restart announces no live member gone, and presence
// converges once the server is back (it kept the rows, now expired: each
// instance renews its own before anyone claims).
func TestPresenceAcrossAPostgreSQLRestart(t *testing.T) {
	wstest.CheckGoroutines(t)
	srv := ownServer(t)
	brokertest.PresenceOutage(t, presencePair(srv.URL), srv.Stop, func() { srv.Restart(t) })
}

// A renewal and a claim of the same expired entries racing, on many
// processes: each entry is renewed or claimed, never both, and claimed
// once at most.
func TestPresenceRenewalAndClaimRacingNeverBothWin(t *testing.T) {
	wstest.CheckGoroutines(t)
	const procs, entries = 6, 3000
	url, prefix := pgURL(t), pgbroker.WithPrefix(uniquePrefix())
	brokers := make([]*pgbroker.Broker, procs)
	for i := range brokers {
		brokers[i] = newBroker(t, url, prefix)
	}
	recs := make([]wsroom.PresenceRecord, entries)
	ids := make([]string, entries)
	for i := range recs {
		ids[i] = fmt.Sprint("own-", i)
		recs[i] = wsroom.PresenceRecord{ID: ids[i], Owner: "own", Key: fmt.Sprint("k", i), Joined: time.Now()}
	}
	if err := brokers[0].PutPresence("race", recs, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	wstest.WaitFor(t, "the leases to run out", func() bool { return time.Since(start) > 5*time.Millisecond })

	var (
		mu        sync.Mutex
		claimed   = map[string]int{}
		renewed   = map[string]bool{}
		wg        sync.WaitGroup
		errs      = make(chan error, 2*procs)
		begin     = make(chan struct{})
		renewals  = 0
		claimRuns = 0
	)
	for i, b := range brokers {
		wg.Add(2)
		go func() { // renews a slice of the entries, twice
			defer wg.Done()
			<-begin
			part := ids[i*entries/procs : (i+1)*entries/procs]
			for range 2 {
				missing, err := b.RefreshPresence("race", part, time.Minute)
				if err != nil {
					errs <- err
					return
				}
				gone := map[string]bool{}
				for _, id := range missing {
					gone[id] = true
				}
				mu.Lock()
				renewals++
				for _, id := range part {
					if !gone[id] {
						renewed[id] = true
					}
				}
				mu.Unlock()
			}
		}()
		go func() { // claims, until a claim finds nothing
			defer wg.Done()
			<-begin
			for {
				got, err := b.ClaimExpired(context.Background(), "race")
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				claimRuns++
				for _, x := range got {
					claimed[x.ID]++
				}
				mu.Unlock()
				if len(got) == 0 {
					return
				}
			}
		}()
	}
	close(begin)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, id := range ids {
		switch n := claimed[id]; {
		case n > 1:
			t.Fatalf("entry %s claimed %d times", id, n)
		case n == 1 && renewed[id]:
			t.Fatalf("entry %s both renewed and claimed", id)
		case n == 0 && !renewed[id]:
			t.Fatalf("entry %s neither renewed nor claimed", id)
		}
	}
	live := len(readAll(t, brokers[1], "race"))
	t.Logf("%d entries renewed, %d claimed, in %d renewals and %d claims at once", len(renewed), len(claimed), renewals, claimRuns)
	if live != len(renewed) {
		t.Fatalf("%d entries present, want the %d renewed", live, len(renewed))
	}
}

// Keys, metadata and leave messages hold anything JSON can carry (quotes,
// backslashes, NUL, any Unicode, 10 KB): they travel inside the entry's
// JSON, in a bytea, so PostgreSQL's text, which refuses NUL, never sees
// them; room names, up to 10 KB and with NUL, become their keys.
func TestPresenceEntriesHoldHostileKeysAndRoomNames(t *testing.T) {
	wstest.CheckGoroutines(t)
	a, b := presencePair(pgURL(t))(t)
	keys := []string{`'`, `"`, `\`, `\\'"`, "a'; DROP TABLE x; --", "nul\x00key", "\x00", "房间-ümlaut-🙂",
		"\u2028\u2029", "tab\tnew\nline", strings.Repeat("k", 10_000)}
	rooms := []string{"plain", "nul\x00room", `'"\`, "🙂", strings.Repeat("r", 10_000)}
	for _, room := range rooms {
		var recs []wsroom.PresenceRecord
		for i, key := range keys {
			js, _ := json.Marshal(key)
			recs = append(recs, wsroom.PresenceRecord{
				ID: fmt.Sprint("o-", i), Owner: "o", Key: key,
				Meta:   []byte(`{"key":` + string(js) + `}`),
				Leave:  []byte(`{"type":"left","from":` + string(js) + `}`),
				Joined: time.Unix(1, 2).UTC(),
			})
		}
		if err := a.PutPresence(room, recs, time.Minute); err != nil {
			t.Fatalf("room %.20q: %v", room, err)
		}
		got := map[string]wsroom.PresenceRecord{}
		for _, x := range readAll(t, b, room) {
			got[x.ID] = x
		}
		for _, want := range recs {
			x := got[want.ID]
			if x.Key != want.Key || string(x.Meta) != string(want.Meta) || string(x.Leave) != string(want.Leave) {
				t.Fatalf("room %.20q: entry %s came back as %.40q, want %.40q", room, want.ID, x.Key, want.Key)
			}
		}
		if len(got) != len(recs) {
			t.Fatalf("room %.20q holds %d entries, want %d", room, len(got), len(recs))
		}
	}
	// IDs are the registry's (16 hexadecimal digits, a dash, a count): a
	// NUL in one is refused by PostgreSQL's text, with an error, and the
	// room is as it was.
	err := a.PutPresence("plain", []wsroom.PresenceRecord{{ID: "bad\x00id", Owner: "o", Key: "x"}}, time.Minute)
	if err == nil || !strings.Contains(err.Error(), "plain") {
		t.Fatalf("an ID with NUL returned %v, want PostgreSQL's refusal naming the room", err)
	}
	if n := len(readAll(t, b, "plain")); n != len(keys) {
		t.Fatalf("after the refused put the room holds %d entries, want %d", n, len(keys))
	}
}

// While the listener knows PostgreSQL is unreachable, every presence call
// fails at once with ErrUnavailable, without waiting for the network;
// once the listener is back, they work again. When the network goes
// silent instead, a call waits no longer than the publish timeout.
func TestPresenceCallsFailAtOnceWhileThePostgreSQLIsKnownDown(t *testing.T) {
	wstest.CheckGoroutines(t)
	proxy := tcpproxy.New(t, hostPort(t, pgURL(t)))
	const timeout = 300 * time.Millisecond
	b := newBroker(t, viaProxy(t, pgURL(t), proxy), pgbroker.WithPrefix(uniquePrefix()), pgbroker.WithPublishTimeout(timeout))
	defer brokertest.Subscribe(t, b, "room", func([]byte) {})() // runs the listener
	rec := wsroom.PresenceRecord{ID: "o-1", Owner: "o", Key: "ann"}
	wstest.WaitFor(t, "a first put", func() bool { return b.PutPresence("room", []wsroom.PresenceRecord{rec}, time.Minute) == nil })

	proxy.Down()
	wstest.WaitFor(t, "the listener to know", func() bool {
		return errors.Is(b.PutPresence("room", []wsroom.PresenceRecord{rec}, time.Minute), pgbroker.ErrUnavailable)
	})
	ctx := context.Background()
	calls := map[string]func() error{
		"PutPresence": func() error { return b.PutPresence("room", []wsroom.PresenceRecord{rec}, time.Minute) },
		"RefreshPresence": func() error {
			_, err := b.RefreshPresence("room", []string{rec.ID}, time.Minute)
			return err
		},
		"DropPresence": func() error { return b.DropPresence("room", []string{rec.ID}) },
		"ReadPresence": func() error { _, err := b.ReadPresence(ctx, "room"); return err },
		"ClaimExpired": func() error { _, err := b.ClaimExpired(ctx, "room"); return err },
	}
	for name, call := range calls {
		start := time.Now()
		err := call()
		if took := time.Since(start); !errors.Is(err, pgbroker.ErrUnavailable) || took > 50*time.Millisecond {
			t.Fatalf("%s while down returned %v after %v, want ErrUnavailable at once", name, err, took)
		}
	}
	proxy.Up()
	wstest.WaitFor(t, "presence calls to work again", func() bool { return calls["RefreshPresence"]() == nil })
	for name, call := range calls {
		if err := call(); err != nil {
			t.Fatalf("%s once PostgreSQL is back: %v", name, err)
		}
	}

	proxy.Stall() // requests reach the server, answers never come back
	for name, call := range calls {
		start := time.Now()
		err := call()
		if took := time.Since(start); err == nil || took > timeout+2*time.Second {
			t.Fatalf("%s with the answers stalled returned %v after %v, want an error within about %v", name, err, took, timeout)
		}
	}
	proxy.Cut()
}

// With WithoutSchemaSetup, New needs the presence table too, and names
// it; the migration makes it.
func TestWithoutSchemaSetupNeedsThePresenceTable(t *testing.T) {
	wstest.CheckGoroutines(t)
	url, name := pgURL(t), uniquePrefix()
	pool := newPool(t, url)
	sql, _ := pgbroker.SchemaSQL(name)
	exec(t, pool, sql)
	exec(t, pool, "DROP TABLE "+name+"_presence")
	_, err := pgbroker.New(context.Background(), pool, pgbroker.WithPrefix(name), pgbroker.WithoutSchemaSetup())
	if err == nil || !strings.Contains(err.Error(), name+"_presence") || strings.Contains(err.Error(), name+"_log") {
		t.Fatalf("New without the presence table returned %v, want an error naming it alone", err)
	}
	exec(t, pool, sql) // an earlier deployment runs the migration again
	a, b := newBroker(t, url, pgbroker.WithPrefix(name), pgbroker.WithoutSchemaSetup()), newBroker(t, url, pgbroker.WithPrefix(name))
	if err := a.PutPresence("r", []wsroom.PresenceRecord{{ID: "o-1", Owner: "o", Key: "ann"}}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, b, "r"); len(got) != 1 || got[0].Key != "ann" {
		t.Fatalf("read %+v, want ann", got)
	}
}

// The rows of a room whose every process died (nobody claims them) are
// deleted by the trimming of any Broker four leases, a minute at least,
// after their last renewal: the table cannot grow without bound. A
// renewal puts that off.
func TestTrimDeletesPresenceNobodyClaimedForFourLeases(t *testing.T) {
	wstest.CheckGoroutines(t)
	url, name := pgURL(t), uniquePrefix()
	b := newBroker(t, url, pgbroker.WithPrefix(name))
	admin := newPool(t, url)
	dead := wsroom.PresenceRecord{ID: "dead-1", Owner: "dead", Key: "ghost"}
	live := wsroom.PresenceRecord{ID: "live-1", Owner: "live", Key: "ann"}
	for _, x := range []wsroom.PresenceRecord{dead, live} {
		if err := b.PutPresence("abandoned", []wsroom.PresenceRecord{x}, 30*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	var keep float64
	if err := admin.QueryRow(context.Background(), "SELECT extract(epoch FROM keep - expires)::float8 FROM "+name+"_presence WHERE id = $1", dead.ID).Scan(&keep); err != nil {
		t.Fatal(err)
	}
	if keep != 90 {
		t.Fatalf("a row with a 30 s lease is kept %v s past its expiry, want 90 s (four leases in all)", keep)
	}
	// Time passes for the dead entry alone: its keep is moved to the past.
	exec(t, admin, "UPDATE "+name+"_presence SET expires = now() - interval '2 minutes', keep = now() - interval '1 second' WHERE id = $1", dead.ID)
	if err := b.Trim(context.Background()); err != nil {
		t.Fatal(err)
	}
	var ids []string
	if err := admin.QueryRow(context.Background(), "SELECT coalesce(array_agg(id), '{}') FROM "+name+"_presence").Scan(&ids); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(ids) != "[live-1]" {
		t.Fatalf("after the trim the table holds %v, want the live entry alone", ids)
	}
}

// readAll reads room's entries on b, failing the test on an error.
func readAll(t testing.TB, b wsroom.PresenceBroker, room string) []wsroom.PresenceRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wstest.Timeout)
	defer cancel()
	recs, err := b.ReadPresence(ctx, room)
	if err != nil {
		t.Fatalf("ReadPresence(%.20q): %v", room, err)
	}
	return recs
}

// hostPort returns the host:port of a PostgreSQL URL.
func hostPort(t testing.TB, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// viaProxy returns raw with its host:port replaced by the proxy's.
func viaProxy(t testing.TB, raw string, p *tcpproxy.Proxy) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = p.Addr()
	return u.String()
}
