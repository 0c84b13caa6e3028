package redisbroker_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/brokertest"
	"github.com/wsroom/wsroom/internal/wstest"
	"github.com/wsroom/wsroom/redisbroker"
)

// A room subscribed, cancelled and subscribed again in quick succession
// is ready only once its last SUBSCRIBE is in effect: the confirmation of
// an earlier one, arriving while an UNSUBSCRIBE and a new SUBSCRIBE are on
// their way, must not release it.
func TestReadyWaitsForTheLatestSubscribe(t *testing.T) {
	wstest.CheckGoroutines(t)
	addr := redisAddr(t)
	prefix := uniquePrefix(t)
	a := newBroker(t, addr, nil, redisbroker.WithPrefix(prefix))
	b := newBroker(t, addr, nil, redisbroker.WithPrefix(prefix))
	in := brokertest.NewInbox(16)
	for i := range 500 {
		cancel, ready := b.Subscribe("flap", in.Deliver)
		// Cancel at varied points of the first subscription's way to
		// Redis: before the owner takes it, while its PING is out, after
		// its PONG.
		switch i % 3 {
		case 1:
			time.Sleep(time.Duration(i%20) * 10 * time.Microsecond)
		case 2:
			<-ready
		}
		cancel()
		cancel = brokertest.Subscribe(t, b, "flap", in.Deliver)
		want := fmt.Sprintf(`{"round":%d}`, i)
		if err := a.Publish("flap", []byte(want)); err != nil {
			t.Fatal(err)
		}
		if got := string(in.Next(t)); got != want {
			t.Fatalf("round %d: got %s, want %s", i, got, want)
		}
		cancel()
	}
}

// A second subscription to a room whose subscription Redis has confirmed
// has nothing to wait for.
func TestReadyAtOnceForARoomAlreadySubscribed(t *testing.T) {
	wstest.CheckGoroutines(t)
	b := newBroker(t, redisAddr(t), nil, redisbroker.WithPrefix(uniquePrefix(t)))
	defer brokertest.Subscribe(t, b, "x", func([]byte) {})()
	for i := range 3 {
		cancel, ready := b.Subscribe("x", func([]byte) {})
		select {
		case <-ready:
		default:
			t.Fatalf("subscription %d to a confirmed room is not ready at once", i+2)
		}
		defer cancel()
	}
}

// A server that accepts the connection and never answers leaves no join
// waiting longer than the health-check interval, whatever the client's
// own timeouts.
func TestReadyIsBoundedWhenRedisDoesNotAnswer(t *testing.T) {
	wstest.CheckGoroutines(t)
	const interval = 300 * time.Millisecond
	b := newBroker(t, blackhole(t), []func(*redis.Options){func(o *redis.Options) {
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout = 2*time.Second, 2*time.Second, 2*time.Second
	}}, redisbroker.WithHealthCheck(interval))
	start := time.Now()
	cancel, ready := b.Subscribe("r", func([]byte) {})
	defer cancel()
	select {
	case <-ready:
	case <-time.After(wsroom.BrokerReadyTimeout):
		t.Fatalf("ready not closed within %v", wsroom.BrokerReadyTimeout)
	}
	if took := time.Since(start); took > 4*interval {
		t.Fatalf("ready took %v against a server that does not answer, want about the health-check interval %v", took, interval)
	}
}

// A subscription waiting for its confirmation when the connection fails
// is released at once, not after the health-check interval, and its room
// is subscribed once go-redis has reconnected.
func TestReadyIsReleasedWhenTheConnectionFails(t *testing.T) {
	wstest.CheckGoroutines(t)
	addr := redisAddr(t)
	px := newProxy(t, addr)
	prefix := uniquePrefix(t)
	b := newBroker(t, px.addr(), nil, redisbroker.WithPrefix(prefix)) // health check: 5s
	a := newBroker(t, addr, nil, redisbroker.WithPrefix(prefix))
	defer brokertest.Subscribe(t, b, "first", func([]byte) {})() // the connection is up
	px.freeze()
	in := brokertest.NewInbox(1024)
	cancel, ready := b.Subscribe("waiting", in.Deliver)
	defer cancel()
	select {
	case <-ready:
		t.Fatal("ready closed while the connection does not answer")
	case <-time.After(100 * time.Millisecond):
	}
	severed := time.Now()
	px.sever()
	select {
	case <-ready:
	case <-time.After(redisbroker.DefaultHealthCheck / 2):
		t.Fatalf("ready still open %v after the connection failed", redisbroker.DefaultHealthCheck/2)
	}
	t.Logf("released %v after the connection failed", time.Since(severed))
	brokertest.Await(t, a, "waiting", in)
}

// While the subscription connection is down, joining does not wait, and
// the room is subscribed once Redis is back.
func TestReadyDoesNotWaitWhileRedisIsDown(t *testing.T) {
	wstest.CheckGoroutines(t)
	srv := ownRedis(t)
	prefix := uniquePrefix(t)
	b := newBroker(t, srv.Addr, nil, redisbroker.WithPrefix(prefix))
	a := newBroker(t, srv.Addr, nil, redisbroker.WithPrefix(prefix))
	defer brokertest.Subscribe(t, b, "before", func([]byte) {})()
	srv.Stop()
	wstest.WaitFor(t, "the broker to see Redis down", func() bool { return b.Stats().ConnErrors > 0 })
	in := brokertest.NewInbox(1024)
	cancel, ready := b.Subscribe("during", in.Deliver)
	defer cancel()
	select {
	case <-ready:
	default:
		t.Fatal("ready not closed at once with Redis down")
	}
	srv.Restart(t)
	brokertest.Await(t, a, "during", in)
}

// A client joining a room on one instance receives a message published
// on another right after its join returned, every time.
func TestJoinIsVisibleToOtherInstancesAtOnce(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			wstest.CheckGoroutines(t)
			brokertest.JoinThenPublish(t, pair(redisAddr(t), p.opts...), 1000)
		})
	}
}

// Over a link that delivers a subscriber's commands to Redis late, ready
// still means subscribed: writing the SUBSCRIBE is not enough, Redis must
// have applied it. Each round subscribes a room, then while that
// SUBSCRIBE is on its way subscribes it again (after cancelling the first
// in odd rounds), waits for ready and publishes over a fast link: a ready
// closed early loses the message.
func TestReadyMeansSubscribedOverASlowLink(t *testing.T) {
	wstest.CheckGoroutines(t)
	addr := redisAddr(t)
	px := newSlowProxy(t, addr, 20*time.Millisecond)
	prefix := uniquePrefix(t)
	b := newBroker(t, px.addr(), nil, redisbroker.WithPrefix(prefix))
	a := newBroker(t, addr, nil, redisbroker.WithPrefix(prefix))
	in := brokertest.NewInbox(16)
	for i := range 60 {
		room := fmt.Sprint("slow-", i)
		first, _ := b.Subscribe(room, func([]byte) {})
		time.Sleep(time.Duration(i%3) * time.Millisecond) // the owner writes the SUBSCRIBE meanwhile
		if i%2 == 1 {
			first()
		}
		cancel := brokertest.Subscribe(t, b, room, in.Deliver)
		want := fmt.Sprintf(`{"round":%d}`, i)
		if err := a.Publish(room, []byte(want)); err != nil {
			t.Fatal(err)
		}
		if got := string(in.Next(t)); got != want {
			t.Fatalf("round %d: got %s, want %s", i, got, want)
		}
		cancel()
		first()
	}
}
