package redisbroker_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/brokertest"
	"github.com/wsroom/wsroom/internal/wstest"
	"github.com/wsroom/wsroom/redisbroker"
)

func TestHistoryContract(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			wstest.CheckGoroutines(t)
			brokertest.RunHistory(t, historyPair(redisAddr(t), p.opts...))
		})
	}
}

// A subscription connection killed again and again while another process
// records at full speed: the subscriber still gets every message once,
// in order, reading what it missed from the stream.
func TestRecordedSurvivesKilledSubscriptionConnections(t *testing.T) {
	wstest.CheckGoroutines(t)
	const total, kills = 3000, 10
	addr := redisAddr(t)
	prefix, name := uniquePrefix(t), "killed-"+randomHex(4)
	gate := &dialGate{}
	hist := redisbroker.WithHistory(10*total, time.Minute) // nothing trimmed
	a := newBroker(t, addr, nil, redisbroker.WithPrefix(prefix), hist)
	b := newBroker(t, addr, []func(*redis.Options){named(name), gate.options},
		redisbroker.WithPrefix(prefix), hist)
	in := brokertest.NewRecordedInbox(total)
	defer brokertest.SubscribeRecorded(t, b, "killed", in.Deliver)()
	admin := newClient(t, addr)

	done := make(chan error, 1)
	go func() {
		for i := range total {
			if _, err := a.Record("killed", fmt.Appendf(nil, `{"i":%d}`, i)); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	var last wsroom.Position
	for i := range total {
		if i%(total/kills) == total/kills/2 {
			gate.hold() // B reconnects only once A has recorded more
			killSubscriber(t, admin, name)
			time.AfterFunc(20*time.Millisecond, gate.release)
		}
		m := in.Next(t)
		if i > 0 && (m.Position.Epoch != last.Epoch || m.Position.Offset != last.Offset+1) {
			t.Fatalf("message %d at %+v after %+v", i, m.Position, last)
		}
		if want := fmt.Sprintf(`{"i":%d}`, i); string(m.Payload) != want {
			t.Fatalf("message %d is %s, want %s", i, m.Payload, want)
		}
		last = m.Position
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	s := b.Stats()
	if s.CaughtUp == 0 || s.Gaps != 0 || s.ConnErrors == 0 {
		t.Fatalf("B's stats %+v, want messages caught up, no gap, connection errors", s)
	}
	t.Logf("B: %d caught up from the stream, %d duplicates dropped, %d connection errors", s.CaughtUp, s.Duplicates, s.ConnErrors)
}

// What a subscriber missed beyond the stream's size is skipped: it sees
// the offsets jump, still in order, and counts a gap.
func TestRecordedSkipsWhatTheStreamTrimmedWhileAway(t *testing.T) {
	wstest.CheckGoroutines(t)
	addr := redisAddr(t)
	prefix, name := uniquePrefix(t), "trimmed-"+randomHex(4)
	gate := &dialGate{}
	hist := redisbroker.WithHistory(10, time.Minute)
	a := newBroker(t, addr, nil, redisbroker.WithPrefix(prefix), hist)
	b := newBroker(t, addr, []func(*redis.Options){named(name), gate.options}, redisbroker.WithPrefix(prefix), hist)
	in := brokertest.NewRecordedInbox(1000)
	defer brokertest.SubscribeRecorded(t, b, "trimmed", in.Deliver)()
	record(t, a, "trimmed", 0, 1)
	if m := in.Next(t); m.Position.Offset != 1 {
		t.Fatalf("first message at %+v", m.Position)
	}
	gate.hold()
	killSubscriber(t, newClient(t, addr), name)
	wstest.WaitFor(t, "B to see its connection lost", func() bool { return b.Stats().ConnErrors > 0 })
	last := record(t, a, "trimmed", 1, 500)
	gate.release()
	prev := uint64(1)
	for prev < last.Offset {
		m := in.Next(t)
		if m.Position.Offset <= prev || m.Position.Epoch != last.Epoch {
			t.Fatalf("%+v after offset %d", m.Position, prev)
		}
		prev = m.Position.Offset
	}
	if s := b.Stats(); s.Gaps == 0 {
		t.Fatalf("B's stats %+v, want a gap", s)
	}
}

// The stream keeps at least the last size messages, and about a stream
// node's worth more at most (trimming with ~); History says when a
// position is older than that.
func TestHistoryIsTrimmedBySize(t *testing.T) {
	wstest.CheckGoroutines(t)
	addr := redisAddr(t)
	prefix := uniquePrefix(t)
	b := newBroker(t, addr, nil, redisbroker.WithPrefix(prefix), redisbroker.WithHistory(50, time.Minute))
	last := record(t, b, "sized", 0, 1000)
	ctx := context.Background()
	keys := historyKeys(t, newClient(t, addr), prefix, "sized")
	n, err := newClient(t, addr).XLen(ctx, keys.stream).Result()
	if err != nil {
		t.Fatal(err)
	}
	if n < 50 || n > 50+100 {
		t.Fatalf("the stream keeps %d messages, want 50 to 150", n)
	}
	msgs, epoch, complete, err := b.History(ctx, "sized", wsroom.Position{Offset: last.Offset - 50, Epoch: last.Epoch}, 1000)
	if err != nil || !complete || len(msgs) != 50 || epoch != last.Epoch {
		t.Fatalf("the last 50: %d messages, complete %v, epoch %q, %v", len(msgs), complete, epoch, err)
	}
	msgs, _, complete, err = b.History(ctx, "sized", wsroom.Position{Offset: 1, Epoch: last.Epoch}, 1000)
	if err != nil || complete || len(msgs) != 0 {
		t.Fatalf("since offset 1: %d messages, complete %v, %v; want none, not complete", len(msgs), complete, err)
	}
}

// A room's history, meta hash included, expires its TTL after its last
// record; the room then starts a new epoch, and old positions are not
// complete.
func TestHistoryExpiresAfterItsTTL(t *testing.T) {
	wstest.CheckGoroutines(t)
	addr := redisAddr(t)
	prefix := uniquePrefix(t)
	b := newBroker(t, addr, nil, redisbroker.WithPrefix(prefix), redisbroker.WithHistory(wsroom.DefaultHistorySize, 300*time.Millisecond))
	admin := newClient(t, addr)
	old := record(t, b, "brief", 0, 3)
	keys := historyKeys(t, admin, prefix, "brief")
	ctx := context.Background()
	if ttl := admin.PTTL(ctx, keys.stream).Val(); ttl <= 0 || ttl > 300*time.Millisecond {
		t.Fatalf("the stream's TTL is %v, want at most 300ms", ttl)
	}
	wstest.WaitFor(t, "the history to expire", func() bool {
		return admin.Exists(ctx, keys.meta, keys.stream).Val() == 0
	})
	msgs, epoch, complete, err := b.History(ctx, "brief", old, 100)
	if err != nil || complete || len(msgs) != 0 || epoch == old.Epoch {
		t.Fatalf("after expiry: %d messages, epoch %q (was %q), complete %v, %v", len(msgs), epoch, old.Epoch, complete, err)
	}
	if pos := record(t, b, "brief", 3, 1); pos != (wsroom.Position{Offset: 1, Epoch: epoch}) {
		t.Fatalf("the next record is at %+v, want offset 1 of the epoch History reported, %q", pos, epoch)
	}
}

// A Redis restart loses every history: the next record starts a new
// epoch at offset 1, a subscriber gets it, and History knows no old
// position.
func TestRedisRestartStartsANewEpoch(t *testing.T) {
	wstest.CheckGoroutines(t)
	srv := ownRedis(t)
	prefix := redisbroker.WithPrefix(uniquePrefix(t))
	a, b := newBroker(t, srv.Addr, nil, prefix), newBroker(t, srv.Addr, nil, prefix)
	in := brokertest.NewRecordedInbox(100)
	defer brokertest.SubscribeRecorded(t, b, "restarted", in.Deliver)()
	old := record(t, a, "restarted", 0, 5)
	for range 5 {
		in.Next(t)
	}
	srv.Stop()
	srv.Restart(t)
	var pos wsroom.Position
	wstest.WaitFor(t, "a record to succeed", func() bool {
		var err error
		pos, err = a.Record("restarted", []byte(`{"after":"restart"}`))
		return err == nil
	})
	if pos.Offset != 1 || pos.Epoch == old.Epoch {
		t.Fatalf("first record after the restart at %+v; before it, %+v", pos, old)
	}
	if m := in.Next(t); m.Position != pos || string(m.Payload) != `{"after":"restart"}` {
		t.Fatalf("B got %+v %s, want %+v", m.Position, m.Payload, pos)
	}
	msgs, epoch, complete, err := b.History(context.Background(), "restarted", old, 100)
	if err != nil || complete || len(msgs) != 0 || epoch != pos.Epoch {
		t.Fatalf("History of the old epoch: %d messages, epoch %q, complete %v, %v", len(msgs), epoch, complete, err)
	}
}

// Room names that look like patterns, hash tags, key separators or
// nothing at all are rooms like any other, each with a history of its
// own.
func TestHostileRoomNamesHaveHistoriesOfTheirOwn(t *testing.T) {
	wstest.CheckGoroutines(t)
	addr := redisAddr(t)
	prefix := redisbroker.WithPrefix(uniquePrefix(t))
	a, b := newBroker(t, addr, nil, prefix), newBroker(t, addr, nil, prefix)
	rooms := []string{"", "*", "[abc]", "{x}", "{", "}", "x}m:y", "m:x", "s:x", ":", "a:b", "\x00", "wsh1:e:1:", "é", " "}
	inboxes := make([]*brokertest.RecordedInbox, len(rooms))
	for i, r := range rooms {
		inboxes[i] = brokertest.NewRecordedInbox(len(rooms) + 1)
		defer brokertest.SubscribeRecorded(t, b, r, inboxes[i].Deliver)()
	}
	for i, r := range rooms {
		for j := range i + 1 {
			if _, err := a.Record(r, fmt.Appendf(nil, `{"room":%d,"j":%d}`, i, j)); err != nil {
				t.Fatalf("room %q: %v", r, err)
			}
		}
	}
	ctx := context.Background()
	for i, r := range rooms {
		for j := range i + 1 {
			m := inboxes[i].Next(t)
			if want := fmt.Sprintf(`{"room":%d,"j":%d}`, i, j); string(m.Payload) != want || m.Position.Offset != uint64(j+1) {
				t.Fatalf("room %q: got %+v %s, want offset %d %s", r, m.Position, m.Payload, j+1, want)
			}
		}
		msgs, epoch, complete, err := b.History(ctx, r, wsroom.Position{Epoch: ""}, 100)
		if err != nil || complete {
			t.Fatalf("room %q: History of no epoch: complete %v, %v", r, complete, err)
		}
		msgs, _, complete, err = b.History(ctx, r, wsroom.Position{Epoch: epoch}, 100)
		if err != nil || !complete || len(msgs) != i+1 {
			t.Fatalf("room %q: %d messages, complete %v, %v; want %d", r, len(msgs), complete, err, i+1)
		}
	}
}

// Records and publishes share a room's channel but never each other's
// subscriptions; a recorded subscription to a room already subscribed
// for publishes is ready only once it is synced.
func TestRecordedAndPublishedKeepApart(t *testing.T) {
	wstest.CheckGoroutines(t)
	addr := redisAddr(t)
	prefix := redisbroker.WithPrefix(uniquePrefix(t))
	a, b := newBroker(t, addr, nil, prefix), newBroker(t, addr, nil, prefix)
	live := brokertest.NewInbox(100)
	defer brokertest.Subscribe(t, b, "both", live.Deliver)()
	rec := brokertest.NewRecordedInbox(100)
	defer brokertest.SubscribeRecorded(t, b, "both", rec.Deliver)()
	pos, err := a.Record("both", []byte(`{"kind":"recorded"}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Publish("both", []byte(`{"kind":"published"}`)); err != nil {
		t.Fatal(err)
	}
	if m := rec.Next(t); m.Position != pos || string(m.Payload) != `{"kind":"recorded"}` {
		t.Fatalf("recorded subscription got %+v %s", m.Position, m.Payload)
	}
	if p := live.Next(t); string(p) != `{"kind":"published"}` {
		t.Fatalf("publish subscription got %s", p)
	}
	if s := b.Stats(); s.Rooms != 1 || s.Malformed != 0 {
		t.Fatalf("stats %+v, want one room, nothing malformed", s)
	}
}

// While Redis is down, Record fails at once with ErrUnavailable, after
// the first failure, and History too.
func TestRecordFailsAtOnceWhileRedisIsDown(t *testing.T) {
	wstest.CheckGoroutines(t)
	srv := ownRedis(t)
	b := newBroker(t, srv.Addr, nil, redisbroker.WithPrefix(uniquePrefix(t)))
	record(t, b, "down", 0, 1)
	srv.Stop()
	if _, err := b.Record("down", []byte(`{}`)); err == nil {
		t.Fatal("record with Redis down succeeded")
	}
	start := time.Now()
	for range 100 {
		if _, err := b.Record("down", []byte(`{}`)); !errors.Is(err, redisbroker.ErrUnavailable) {
			t.Fatalf("record with the breaker open: %v, want ErrUnavailable", err)
		}
	}
	if took := time.Since(start); took > 100*time.Millisecond {
		t.Fatalf("100 records with the breaker open took %v", took)
	}
	if _, _, _, err := b.History(context.Background(), "down", wsroom.Position{}, 10); !errors.Is(err, redisbroker.ErrUnavailable) {
		t.Fatalf("history with the breaker open: %v, want ErrUnavailable", err)
	}
	srv.Restart(t)
	wstest.WaitFor(t, "records to succeed again", func() bool {
		_, err := b.Record("down", []byte(`{}`))
		return err == nil
	})
	if s := b.Stats(); s.RecordErrors < 101 {
		t.Fatalf("stats %+v, want the failed records counted", s)
	}
}

// historyPair returns brokertest's HistoryPair: two processes on the
// server at addr, with a prefix of their own.
func historyPair(addr string, opts ...func(*redis.Options)) brokertest.HistoryPair {
	return func(t *testing.T) (a, b wsroom.HistoryBroker) {
		p := redisbroker.WithPrefix(uniquePrefix(t))
		return newBroker(t, addr, opts, p), newBroker(t, addr, opts, p)
	}
}

// record records n messages {"i":from...} in room and returns the last
// position.
func record(t testing.TB, b *redisbroker.Broker, room string, from, n int) wsroom.Position {
	t.Helper()
	var pos wsroom.Position
	for i := from; i < from+n; i++ {
		var err error
		if pos, err = b.Record(room, fmt.Appendf(nil, `{"i":%d}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	return pos
}

type keyPair struct{ meta, stream string }

// historyKeys finds the keys of room's history by their names' ends.
func historyKeys(t testing.TB, admin *redis.Client, prefix, room string) keyPair {
	t.Helper()
	keys, err := admin.Keys(context.Background(), prefix+":{*}*").Result()
	if err != nil {
		t.Fatal(err)
	}
	var k keyPair
	for _, key := range keys {
		switch key[len(prefix)+19:] {
		case "m:" + room:
			k.meta = key
		case "s:" + room:
			k.stream = key
		}
	}
	if k.meta == "" || k.stream == "" {
		t.Fatalf("no history keys of room %q among %q", room, keys)
	}
	return k
}

// killSubscriber kills the subscription connections of the clients
// called name.
func killSubscriber(t testing.TB, admin *redis.Client, name string) {
	t.Helper()
	var subs []map[string]string
	// After the last kill the connection may still be coming back.
	wstest.WaitFor(t, name+"'s subscription connection", func() bool {
		subs = subscribers(clients(t, admin, name))
		return len(subs) > 0
	})
	for _, s := range subs {
		if err := admin.ClientKillByFilter(context.Background(), "ID", s["id"]).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

// dialGate makes a client's dials fail while held, so that a connection
// killed stays down until release.
type dialGate struct {
	held atomic.Bool
}

func (g *dialGate) hold()    { g.held.Store(true) }
func (g *dialGate) release() { g.held.Store(false) }

func (g *dialGate) options(o *redis.Options) {
	o.Dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if g.held.Load() {
			return nil, errors.New("dial held by the test")
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
}

// SubscribeRecorded and its cancel never wait for Redis, and ready is
// closed within wsroom.BrokerReadyTimeout when Redis does not answer;
// Record is bounded by the publish timeout.
func TestRecordedSubscribeAndRecordDoNotWaitForRedis(t *testing.T) {
	wstest.CheckGoroutines(t)
	b := newBroker(t, blackhole(t), []func(*redis.Options){func(o *redis.Options) {
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout = 200*time.Millisecond, 200*time.Millisecond, 200*time.Millisecond
		o.ContextTimeoutEnabled = true
	}}, redisbroker.WithPublishTimeout(200*time.Millisecond))
	start := time.Now()
	var ready <-chan struct{}
	for i := range 1000 {
		cancel, _ := b.SubscribeRecorded(fmt.Sprint("r", i%10), func(wsroom.Position, []byte) {})
		cancel()
		var keep func()
		keep, ready = b.SubscribeRecorded(fmt.Sprint("kept", i%10), func(wsroom.Position, []byte) {})
		defer keep()
		if took := time.Since(start); took > 10*time.Second {
			t.Fatalf("%d subscribe/cancel pairs took %v against a server that does not answer", i+1, took)
		}
	}
	select {
	case <-ready:
	case <-time.After(wsroom.BrokerReadyTimeout):
		t.Fatalf("ready still open after %v", wsroom.BrokerReadyTimeout)
	}
	start = time.Now()
	if _, err := b.Record("r", []byte(`{}`)); err == nil || time.Since(start) > 2*time.Second {
		t.Fatalf("record to a server that does not answer: %v after %v", err, time.Since(start))
	}
}
