package redisbroker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/brokertest"
	"github.com/wsroom/wsroom/internal/wstest"
	"github.com/wsroom/wsroom/redisbroker"
)

func TestBrokerContract(t *testing.T) {
	wstest.CheckGoroutines(t)
	brokertest.Run(t, pair(redisAddr(t)))
}

func TestBrokerContractOverRESP2(t *testing.T) {
	wstest.CheckGoroutines(t)
	brokertest.Run(t, pair(redisAddr(t), resp2))
}

func TestTwoInstancesFormOneRoomThroughRedis(t *testing.T) {
	wstest.CheckGoroutines(t)
	addr := redisAddr(t)
	var brokers []*redisbroker.Broker
	brokertest.TwoInstances(t, func(t *testing.T) (wsroom.Broker, wsroom.Broker) {
		a, b := pair(addr)(t)
		brokers = []*redisbroker.Broker{a.(*redisbroker.Broker), b.(*redisbroker.Broker)}
		return a, b
	}, 3000)
	a, b := brokers[0].Stats(), brokers[1].Stats()
	if b.Received < 3000 || a.Published < 3000 {
		t.Fatalf("A published %d and B received %d, want at least 3000", a.Published, b.Received)
	}
	if a.Echoes < 3000 {
		t.Fatalf("A dropped %d echoes, want its own 3000 messages", a.Echoes)
	}
	if a.Malformed+b.Malformed+a.PublishErrors+b.PublishErrors != 0 {
		t.Fatalf("stats A %+v, B %+v", a, b)
	}
}

func TestOutageKeepsLocalDeliveryAndResubscribes(t *testing.T) {
	wstest.CheckGoroutines(t)
	srv := ownRedis(t)
	brokertest.Outage(t, pair(srv.Addr), srv.Stop, func() { srv.Restart(t) })
}

// Rooms that gain their first member or lose their last during an outage
// are subscribed, or not, once Redis is back; publishes fail fast while it
// is down; and each process still has one subscription connection.
func TestRoomsChangedDuringAnOutage(t *testing.T) {
	wstest.CheckGoroutines(t)
	srv := ownRedis(t)
	prefix, nameA, nameB := uniquePrefix(t), "a-"+randomHex(4), "b-"+randomHex(4)
	ba := newBroker(t, srv.Addr, []func(*redis.Options){named(nameA)}, redisbroker.WithPrefix(prefix))
	bb := newBroker(t, srv.Addr, []func(*redis.Options){named(nameB)}, redisbroker.WithPrefix(prefix))
	A, B := brokertest.StartInstance(t, ba), brokertest.StartInstance(t, bb)
	a1, b1 := A.Join(t, "before"), B.Join(t, "before")
	leaver := B.Join(t, "left")
	brokertest.Bridge(t, a1, b1)
	admin := newClient(t, srv.Addr)
	wstest.WaitFor(t, "room left to be subscribed", func() bool { return numSub(t, admin, prefix+":left") == 1 })

	srv.Stop()
	start := time.Now()
	err := ba.Publish("before", []byte(`{"during":"outage"}`))
	if took := time.Since(start); err == nil || took > 3*time.Second {
		t.Fatalf("publish while Redis is down: %v after %v, want an error within the publish timeout", err, took)
	}
	leaver.Close()
	wstest.WaitFor(t, "B's room to empty", func() bool { return B.Rooms.Room("left").Len() == 0 })
	a2, b2 := A.Join(t, "during"), B.Join(t, "during")
	srv.Restart(t)

	brokertest.Bridge(t, a2, b2)
	brokertest.Bridge(t, b2, a2)
	brokertest.Bridge(t, a1, b1)
	brokertest.Bridge(t, b1, a1)
	if n := numSub(t, admin, prefix+":left"); n != 0 {
		t.Fatalf("the room left during the outage has %d subscribers, want 0", n)
	}
	for _, name := range []string{nameA, nameB} {
		subs := subscribers(clients(t, admin, name))
		if len(subs) != 1 || subs[0]["sub"] != "2" {
			t.Fatalf("%s has subscription connections %v, want one on 2 channels", name, subs)
		}
	}
	if s := bb.Stats(); s.ConnErrors == 0 || s.Rooms != 2 {
		t.Fatalf("B's stats %+v, want a connection error counted and 2 rooms", s)
	}
}

func TestBadBytesAreCountedAndNeverReachClients(t *testing.T) {
	wstest.CheckGoroutines(t)
	addr := redisAddr(t)
	prefix := uniquePrefix(t)
	ba := newBroker(t, addr, nil, redisbroker.WithPrefix(prefix))
	bb := newBroker(t, addr, nil, redisbroker.WithPrefix(prefix))
	A, B := brokertest.StartInstance(t, ba), brokertest.StartInstance(t, bb)
	ca, cb := A.Join(t, "bad"), B.Join(t, "bad")
	brokertest.Bridge(t, ca, cb)

	env := func(origin, payload string) string {
		return string(redisbroker.Envelope(origin, []byte(payload)))
	}
	other := "00112233445566ff"
	malformed := []string{
		`{"from":"plain","seq":1}`, // a plain client's JSON, no envelope
		"",
		"wsr1:",
		"wsr1:" + other, // truncated before the separator
		"wsr1:00112233445566FF:{}",
		"wsr2:" + other + `:{"from":"v2","seq":2}`,
		"\xff\xfe\x00",
	}
	invalid := []string{
		env(other, `{"from":"x","se`),     // truncated JSON
		env(other, "{\"from\":\"\xff\"}"), // invalid UTF-8
		env(other, ""),
		env(other, "not json"),
	}
	echo := env(redisbroker.Origin(bb), `{"from":"echo","seq":3}`)
	plain := newClient(t, addr)
	ctx := context.Background()
	for _, m := range append(append(malformed, invalid...), echo) {
		if err := plain.Publish(ctx, prefix+":bad", m).Err(); err != nil {
			t.Fatal(err)
		}
	}
	ca.Send(t, brokertest.Msg{From: "a", Seq: 7})
	for { // probes left by the bridge may come first; nothing else may
		var m brokertest.Msg
		cb.JSON(t, &m)
		if m.Seq < 0 {
			continue
		}
		if m != (brokertest.Msg{From: "a", Seq: 7}) {
			t.Fatalf("B's client got %+v, want only a's valid message", m)
		}
		break
	}
	if s := bb.Stats(); s.Malformed != int64(len(malformed)) || s.Echoes != 1 {
		t.Fatalf("B's broker stats %+v, want %d malformed and 1 echo", s, len(malformed))
	}
	if s := B.Rooms.Stats(); s.RemoteInvalid != int64(len(invalid)) {
		t.Fatalf("B's rooms stats %+v, want %d invalid", s, len(invalid))
	}
	ca.Send(t, brokertest.Msg{From: "a", Seq: 8})
	var m brokertest.Msg
	cb.JSON(t, &m)
	if m != (brokertest.Msg{From: "a", Seq: 8}) {
		t.Fatalf("B's client got %+v after the bad bytes, want a's next message", m)
	}
}

func TestOneSubscriptionConnectionForAllRooms(t *testing.T) {
	wstest.CheckGoroutines(t)
	addr := redisAddr(t)
	prefix, name := uniquePrefix(t), "one-"+randomHex(4)
	b := newBroker(t, addr, []func(*redis.Options){named(name)}, redisbroker.WithPrefix(prefix))
	admin := newClient(t, addr)
	rooms := []string{"*", "[abc]", "a?c", "h*llo", "", "a b"}
	for i := range 94 {
		rooms = append(rooms, fmt.Sprint("room-", i))
	}
	cancels := make([]func(), len(rooms))
	for i, r := range rooms {
		cancels[i] = subscribe(b, r, func([]byte) {})
	}
	wstest.WaitFor(t, "every room subscribed", func() bool {
		for _, r := range rooms {
			if numSub(t, admin, prefix+":"+r) != 1 {
				return false
			}
		}
		return true
	})
	subs := subscribers(clients(t, admin, name))
	if len(subs) != 1 || subs[0]["sub"] != "100" || subs[0]["psub"] != "0" {
		t.Fatalf("subscription connections %v, want one subscribed to 100 channels and no pattern", subs)
	}
	id := subs[0]["id"]
	for _, cancel := range cancels[10:] {
		cancel()
	}
	wstest.WaitFor(t, "90 rooms unsubscribed", func() bool {
		subs = subscribers(clients(t, admin, name))
		return len(subs) == 1 && subs[0]["sub"] == "10"
	})
	if subs[0]["id"] != id {
		t.Fatalf("the subscription connection changed from %s to %s", id, subs[0]["id"])
	}
	for _, r := range rooms[10:] {
		if n := numSub(t, admin, prefix+":"+r); n != 0 {
			t.Fatalf("room %q still has %d subscribers", r, n)
		}
	}
	if s := b.Stats(); s.Rooms != 10 {
		t.Fatalf("stats %+v, want 10 rooms", s)
	}
}

func TestSubscribeCancelSubscribeInQuickSuccession(t *testing.T) {
	wstest.CheckGoroutines(t)
	addr := redisAddr(t)
	prefix := uniquePrefix(t)
	a := newBroker(t, addr, nil, redisbroker.WithPrefix(prefix))
	b := newBroker(t, addr, nil, redisbroker.WithPrefix(prefix))
	admin := newClient(t, addr)
	cancelled := &recorder{}
	// active subscribes room, waits until Redis delivers to it, and
	// cancels it: the room is subscribed at Redis when flapping starts.
	active := func(room string) {
		in := brokertest.NewInbox(64)
		cancel := brokertest.Subscribe(t, b, room, in.Deliver)
		brokertest.Await(t, a, room, in)
		cancel()
	}
	active("flap")
	for range 200 {
		subscribe(b, "flap", cancelled.deliver)()
	}
	flap := brokertest.NewInbox(64)
	defer subscribe(b, "flap", flap.Deliver)()
	active("gone")
	for range 200 {
		subscribe(b, "gone", cancelled.deliver)()
	}
	for range 200 { // never subscribed at Redis, and must not end up so
		subscribe(b, "never", cancelled.deliver)()
	}
	// A room subscribed after all that, seen active, means every earlier
	// change reached Redis.
	barrier := brokertest.NewInbox(64)
	defer subscribe(b, "barrier", barrier.Deliver)()
	brokertest.Await(t, a, "barrier", barrier)
	for room, want := range map[string]int64{"flap": 1, "gone": 0, "never": 0} {
		if n := numSub(t, admin, prefix+":"+room); n != want {
			t.Fatalf("room %q has %d subscribers, want %d", room, n, want)
		}
	}
	for _, room := range []string{"flap", "gone", "never"} {
		if err := a.Publish(room, []byte(`{"to":"`+room+`"}`)); err != nil {
			t.Fatal(err)
		}
	}
	if got := string(flap.Next(t)); got != `{"to":"flap"}` {
		t.Fatalf("got %s", got)
	}
	// Every message of the rooms went out before the barrier's: once it
	// arrives, the cancelled subscriptions have had all they could get.
	if err := a.Publish("barrier", []byte(`{"to":"barrier"}`)); err != nil {
		t.Fatal(err)
	}
	barrier.Next(t)
	if got := cancelled.got(); len(got) > 0 {
		t.Fatalf("cancelled subscriptions got %q", got)
	}
}

// Subscribe and cancel are called under a room's lock: they must return at
// once even when Redis does not answer.
func TestSubscribeAndCancelDoNotWaitForRedis(t *testing.T) {
	wstest.CheckGoroutines(t)
	b := newBroker(t, blackhole(t), []func(*redis.Options){func(o *redis.Options) {
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout = 200*time.Millisecond, 200*time.Millisecond, 200*time.Millisecond
	}})
	start := time.Now()
	for i := range 1000 {
		subscribe(b, fmt.Sprint("r", i%10), func([]byte) {})()
		defer subscribe(b, fmt.Sprint("kept", i%10), func([]byte) {})()
		// A call that waited for the server would cost its 200 ms timeout:
		// 10 s for 1000 pairs leaves a loaded machine room and still
		// catches one.
		if took := time.Since(start); took > 10*time.Second {
			t.Fatalf("%d subscribe/cancel pairs took %v against a server that does not answer", i+1, took)
		}
	}
}

func TestPublishIsBoundedWhenRedisDoesNotAnswer(t *testing.T) {
	wstest.CheckGoroutines(t)
	b := newBroker(t, blackhole(t), []func(*redis.Options){func(o *redis.Options) { o.ContextTimeoutEnabled = true }},
		redisbroker.WithPublishTimeout(200*time.Millisecond))
	start := time.Now()
	err := b.Publish("r", []byte(`{}`))
	if took := time.Since(start); err == nil || took > 2*time.Second {
		t.Fatalf("publish to a server that does not answer: %v after %v, want an error after about 200ms", err, took)
	}
	if s := b.Stats(); s.PublishErrors != 1 || s.Published != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// A subscription connection that goes silent without closing (a dead
// network path) is probed and replaced, and its rooms subscribed again.
func TestSilentConnectionIsReplaced(t *testing.T) {
	wstest.CheckGoroutines(t)
	addr := redisAddr(t)
	px := newProxy(t, addr)
	prefix := uniquePrefix(t)
	a := newBroker(t, px.addr(), nil, redisbroker.WithPrefix(prefix), redisbroker.WithHealthCheck(200*time.Millisecond))
	b := newBroker(t, addr, nil, redisbroker.WithPrefix(prefix))
	in := brokertest.NewInbox(1024)
	defer brokertest.Subscribe(t, a, "h", in.Deliver)()
	brokertest.Await(t, b, "h", in)
	px.freeze()
	brokertest.Await(t, b, "h", in)
	if s := a.Stats(); s.ConnErrors == 0 {
		t.Fatalf("stats %+v, want the silent connection counted", s)
	}
}

func TestConcurrentPublishersKeepTheirOwnOrder(t *testing.T) {
	wstest.CheckGoroutines(t)
	addr := redisAddr(t)
	prefix := uniquePrefix(t)
	a := newBroker(t, addr, nil, redisbroker.WithPrefix(prefix))
	b := newBroker(t, addr, nil, redisbroker.WithPrefix(prefix))
	const publishers, n = 8, 400
	in := brokertest.NewInbox(publishers*n + 64)
	overlap := &counter{t: t}
	defer brokertest.Subscribe(t, b, "many", func(p []byte) { overlap.deliver(p); in.Deliver(p) })()
	brokertest.Await(t, a, "many", in)
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n {
				if err := a.Publish("many", fmt.Appendf(nil, `{"p":%d,"i":%d}`, p, i)); err != nil {
					t.Errorf("publish: %v", err)
					return
				}
			}
		}()
	}
	next := make([]int, publishers)
	for range publishers * n {
		var m struct{ P, I int }
		if err := json.Unmarshal(in.Next(t), &m); err != nil {
			t.Fatal(err)
		}
		if m.I != next[m.P] {
			t.Fatalf("publisher %d: got message %d, want %d", m.P, m.I, next[m.P])
		}
		next[m.P]++
	}
	wg.Wait()
}

func TestPrefixesKeepDeploymentsApart(t *testing.T) {
	wstest.CheckGoroutines(t)
	addr := redisAddr(t)
	p1, p2 := redisbroker.WithPrefix(uniquePrefix(t)), redisbroker.WithPrefix(uniquePrefix(t))
	a1, b1 := newBroker(t, addr, nil, p1), newBroker(t, addr, nil, p1)
	a2, b2 := newBroker(t, addr, nil, p2), newBroker(t, addr, nil, p2)
	in1, in2 := brokertest.NewInbox(64), brokertest.NewInbox(64)
	defer brokertest.Subscribe(t, b1, "r", in1.Deliver)()
	defer brokertest.Subscribe(t, b2, "r", in2.Deliver)()
	brokertest.Await(t, a1, "r", in1)
	brokertest.Await(t, a2, "r", in2)
	if err := a1.Publish("r", []byte(`{"to":1}`)); err != nil {
		t.Fatal(err)
	}
	if got := string(in1.Next(t)); got != `{"to":1}` {
		t.Fatalf("got %s", got)
	}
	if err := a2.Publish("r", []byte(`{"to":2}`)); err != nil {
		t.Fatal(err)
	}
	if got := string(in2.Next(t)); got != `{"to":2}` {
		t.Fatalf("the other prefix's room got %s first, want only its own message", got)
	}
}

func TestCloseEndsDeliveryAndPublishing(t *testing.T) {
	wstest.CheckGoroutines(t)
	addr := redisAddr(t)
	prefix := uniquePrefix(t)
	a := newBroker(t, addr, nil, redisbroker.WithPrefix(prefix))
	client := newClient(t, addr)
	b, err := redisbroker.New(context.Background(), client, redisbroker.WithPrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	admin := newClient(t, addr)
	in := brokertest.NewInbox(64)
	cancel := brokertest.Subscribe(t, b, "x", in.Deliver)
	brokertest.Await(t, a, "x", in)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	cancel()
	subscribe(b, "y", in.Deliver)()
	if err := b.Publish("x", []byte(`{}`)); !errors.Is(err, redisbroker.ErrClosed) || !errors.Is(err, wsroom.ErrBroker) {
		t.Fatalf("publish after close: %v, want ErrClosed wrapping wsroom.ErrBroker", err)
	}
	wstest.WaitFor(t, "the subscription connection to close", func() bool { return numSub(t, admin, prefix+":x") == 0 })
	if err := client.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("the caller's client after Close: %v, want it open", err)
	}
	// Closing a Broker that never subscribed starts and leaves nothing.
	idle, err := redisbroker.New(context.Background(), newClient(t, addr))
	if err != nil {
		t.Fatal(err)
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestNewRefusesInvalidOptions(t *testing.T) {
	client := newClient(t, redisAddr(t))
	ctx := context.Background()
	if _, err := redisbroker.New(ctx, nil); err == nil {
		t.Error("New with a nil client succeeded")
	}
	for name, o := range map[string]redisbroker.Option{
		"publish timeout 0":   redisbroker.WithPublishTimeout(0),
		"publish timeout -1s": redisbroker.WithPublishTimeout(-time.Second),
		"health check 0":      redisbroker.WithHealthCheck(0),
		"health check -1s":    redisbroker.WithHealthCheck(-time.Second),
		"history size 0":      redisbroker.WithHistory(0, time.Minute),
		"history size -1":     redisbroker.WithHistory(-1, time.Minute),
		"history ttl 0":       redisbroker.WithHistory(10, 0),
		"history ttl -1s":     redisbroker.WithHistory(10, -time.Second),
	} {
		if b, err := redisbroker.New(ctx, client, o); err == nil {
			_ = b.Close()
			t.Errorf("%s accepted", name)
		}
	}
}

// While Redis is down a publisher pays the publish timeout once per
// backoff, not once per message, and publishing works again once it is
// back.
func TestPublishFailsFastWhileRedisIsDown(t *testing.T) {
	wstest.CheckGoroutines(t)
	srv := ownRedis(t)
	b := newBroker(t, srv.Addr, nil)
	if err := b.Publish("r", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	start := time.Now()
	var unavailable int
	var slowest time.Duration
	for i := range 100 {
		began := time.Now()
		err := b.Publish("r", []byte(`{}`))
		if err == nil {
			t.Fatal("publish succeeded with Redis down")
		}
		if errors.Is(err, redisbroker.ErrUnavailable) {
			unavailable++
		}
		if i > 0 {
			slowest = max(slowest, time.Since(began))
		}
		if i%10 == 9 {
			time.Sleep(50 * time.Millisecond) // spread over the probe's backoff: no publish may be its trial
		}
	}
	// The first publish meets the outage and fails within the publish
	// timeout; the next 99 fail at once, none of them waiting on Redis.
	if unavailable != 99 || slowest > 100*time.Millisecond {
		t.Fatalf("with Redis down for %v: %d of the 99 publishes after the first failed with ErrUnavailable, the slowest took %v; want all at once",
			time.Since(start), unavailable, slowest)
	}
	if s := b.Stats(); s.PublishErrors != 100 || s.Published != 1 {
		t.Fatalf("stats %+v", s)
	}
	srv.Restart(t)
	wstest.WaitFor(t, "publishing to work again", func() bool { return b.Publish("r", []byte(`{}`)) == nil })
}

// The health check's PINGs are answered on a healthy idle connection, in
// both protocols (RESP2 answers a subscribed connection's PING with a
// pub/sub frame, RESP3 with a plain reply): the connection is kept, not
// replaced.
func TestHealthCheckKeepsAnIdleConnection(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			wstest.CheckGoroutines(t)
			srv := ownRedis(t)
			clientName := "idle-" + randomHex(4)
			b := newBroker(t, srv.Addr, append(p.opts, named(clientName)), redisbroker.WithHealthCheck(500*time.Millisecond))
			a := newBroker(t, srv.Addr, nil)
			in := brokertest.NewInbox(64)
			defer brokertest.Subscribe(t, b, "idle", in.Deliver)()
			brokertest.Await(t, a, "idle", in)
			admin := newClient(t, srv.Addr)
			subs := subscribers(clients(t, admin, clientName))
			if len(subs) != 1 {
				t.Fatalf("subscription connections %v", subs)
			}
			id := subs[0]["id"]
			// The PINGs that confirmed the subscription are done by now:
			// count five more.
			pings := func() int {
				info, err := admin.Info(context.Background(), "commandstats").Result()
				if err != nil {
					t.Fatal(err)
				}
				var calls int
				if _, rest, ok := strings.Cut(info, "cmdstat_ping:calls="); ok {
					calls, _ = strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
				}
				return calls
			}
			before := pings()
			wstest.WaitFor(t, "5 health-check pings", func() bool { return pings() >= before+5 })
			if subs := subscribers(clients(t, admin, clientName)); len(subs) != 1 || subs[0]["id"] != id {
				t.Fatalf("subscription connections %v, want still the one with id %s", subs, id)
			}
			if s := b.Stats(); s.ConnErrors != 0 {
				t.Fatalf("stats %+v: a healthy connection was replaced", s)
			}
			if err := a.Publish("idle", []byte(`{"still":"here"}`)); err != nil {
				t.Fatal(err)
			}
			if got := string(in.Next(t)); got != `{"still":"here"}` {
				t.Fatalf("got %s", got)
			}
		})
	}
}

// Channel names of a few bytes make subscription confirmations shorter
// than the 36 bytes go-redis v9.20.1 and v9.21.0 peek at in RESP3 before
// reading a push frame (go-redis issue 3935, fixed in v9.22.0): on an idle
// connection that peek waits for more bytes. Such rooms must still work,
// and be ready in time, without the connection being taken for dead. The
// server is the test's own, as the prefix is not unique.
func TestShortChannelNames(t *testing.T) {
	wstest.CheckGoroutines(t)
	srv := ownRedis(t)
	var brokers []*redisbroker.Broker
	brokertest.Run(t, func(t *testing.T) (wsroom.Broker, wsroom.Broker) {
		p := redisbroker.WithPrefix("p")
		a, b := newBroker(t, srv.Addr, nil, p), newBroker(t, srv.Addr, nil, p)
		brokers = append(brokers, a, b)
		return a, b
	})
	for _, b := range brokers {
		if s := b.Stats(); s.ConnErrors != 0 {
			t.Fatalf("stats %+v, want no connection errors", s)
		}
	}
}

// An error reply from Redis is not an outage: Redis answered. The publish
// fails with Redis's error, but the next ones still try Redis.
func TestAnErrorReplyDoesNotOpenTheBreaker(t *testing.T) {
	wstest.CheckGoroutines(t)
	srv := ownRedis(t)
	admin := newClient(t, srv.Addr)
	ctx := context.Background()
	if err := admin.Do(ctx, "ACL", "SETUSER", "nopublish", "on", ">secret", "~*", "&*", "+@all", "-publish").Err(); err != nil {
		t.Fatal(err)
	}
	b := newBroker(t, srv.Addr, []func(*redis.Options){func(o *redis.Options) { o.Username, o.Password = "nopublish", "secret" }})
	for i := range 5 {
		err := b.Publish("r", []byte(`{}`))
		if err == nil || !strings.Contains(err.Error(), "NOPERM") || errors.Is(err, redisbroker.ErrUnavailable) {
			t.Fatalf("publish %d: %v, want Redis's NOPERM reply, not ErrUnavailable", i, err)
		}
	}
}
