package natsbroker_test

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/wsroom/wsroom/brokertest"
	"github.com/wsroom/wsroom/internal/wstest"
	"github.com/wsroom/wsroom/natsbroker"
)

// Once a client's join on one instance has returned, a message another
// instance publishes to the room at once reaches it: no probe, no retry,
// 1,000 rooms new to both instances.
func TestJoinThenPublishFromAnotherInstanceMissesNothing(t *testing.T) {
	wstest.CheckGoroutines(t)
	brokertest.JoinThenPublish(t, pairOn(newServer(t)), 1000)
}

// During reconnection a subscription's ready is closed by the time
// Subscribe returns: the Broker reads the connection's status, so there is
// nothing to wait for, and a join must not wait for NATS it knows is away.
// The subscription takes effect once nats.go has reconnected and
// subscribed again, which it does by itself; that is asynchronous, hence
// the probes.
func TestSubscribeDuringReconnectionIsReadyAtOnceAndResubscribes(t *testing.T) {
	wstest.CheckGoroutines(t)
	ns := newServer(t)
	ncA, ncB := connect(t, ns.url()), connect(t, ns.url())
	a, b := newBroker(t, ncA), newBroker(t, ncB)

	ns.stop()
	wstest.WaitFor(t, "b notices the outage", func() bool { return ncB.Status() == nats.RECONNECTING })
	in := brokertest.NewInbox(256)
	for i := range 10 {
		cancel, ready := b.Subscribe(fmt.Sprint("reborn-", i), in.Deliver)
		if i > 0 {
			defer cancel()
		} else {
			cancel() // a room left during the outage is not subscribed again
		}
		if !isClosed(ready) {
			t.Fatalf("subscription %d during reconnection: ready not closed when Subscribe returned", i)
		}
	}
	if s := b.Stats(); s.Unconfirmed != 10 {
		t.Fatalf("%d subscriptions counted unconfirmed, want 10", s.Unconfirmed)
	}

	ns.start()
	brokertest.Await(t, a, "reborn-9", in)
	if err := a.Publish("reborn-1", []byte(`{"after":true}`)); err != nil {
		t.Fatal(err)
	}
	if got := in.Next(t); string(got) != `{"after":true}` {
		t.Fatalf("got %s, want the message published after the outage", got)
	}
	if s := b.Stats(); s.Subscriptions != 9 || ncB.NumSubscriptions() != 9 {
		t.Fatalf("%d subscriptions (%d on the connection) after reconnecting, want 9", s.Subscriptions, ncB.NumSubscriptions())
	}
}

// Subscriptions made while a round trip is out share the next one: a
// burst of joins costs a PING per batch, not one each.
func TestSubscriptionsMadeTogetherShareARoundTrip(t *testing.T) {
	wstest.CheckGoroutines(t)
	const rtt = 20 * time.Millisecond
	fs := newFakeServer(t, rtt)
	b := newBroker(t, connect(t, fs.url()))
	const n = 200
	readies := make([]<-chan struct{}, n)
	for i := range n {
		_, readies[i] = b.Subscribe(fmt.Sprint("burst-", i), func([]byte) {})
	}
	for i, ready := range readies {
		select {
		case <-ready:
		case <-time.After(wstest.Timeout):
			t.Fatalf("subscription %d not ready within %v", i, wstest.Timeout)
		}
	}
	// Each PONG follows the count of everything before its PING, so the
	// counts are complete once every ready is closed by a PONG.
	if s := b.Stats(); s.Unconfirmed != 0 {
		t.Fatalf("%d subscriptions unconfirmed", s.Unconfirmed)
	}
	subs, pings := fs.subs.Load(), fs.pings.Load()
	t.Logf("%d subscriptions confirmed by %d PINGs", subs, pings)
	// 200 Subscribe calls take a few milliseconds, a round trip 20: a
	// handful of batches. One PING each would be 200.
	if subs != n || pings < 1 || pings > n/4 {
		t.Fatalf("server got %d SUBs and %d PINGs, want %d SUBs and a few PINGs", subs, pings, n)
	}
}

// A connection that is up but does not answer holds a join for the
// subscribe timeout, no longer, counted from each Subscribe: a subscription
// queued behind an unanswered round trip does not wait for a second one.
func TestReadyIsClosedAfterTheSubscribeTimeoutWhenTheServerDoesNotAnswer(t *testing.T) {
	wstest.CheckGoroutines(t)
	const timeout = 300 * time.Millisecond
	fs := newFakeServer(t, -1)
	b := newBroker(t, connect(t, fs.url()), natsbroker.WithSubscribeTimeout(timeout))
	start1 := time.Now()
	_, ready1 := b.Subscribe("mute-1", func([]byte) {})
	wstest.WaitFor(t, "the first PING", func() bool { return fs.pings.Load() == 1 })
	start2 := time.Now()
	_, ready2 := b.Subscribe("mute-2", func([]byte) {})
	for i, w := range []struct {
		ready <-chan struct{}
		start time.Time
	}{{ready1, start1}, {ready2, start2}} {
		select {
		case <-w.ready:
		case <-time.After(wstest.Timeout):
			t.Fatalf("subscription %d not ready within %v", i+1, wstest.Timeout)
		}
		// Half a timeout of slack for a loaded machine; a second round
		// trip would take a whole one more.
		if took := time.Since(w.start); took < timeout || took > timeout*3/2 {
			t.Fatalf("subscription %d ready after %v, want the subscribe timeout, %v", i+1, took, timeout)
		}
	}
	if s := b.Stats(); s.Unconfirmed != 2 {
		t.Fatalf("%d subscriptions unconfirmed, want 2", s.Unconfirmed)
	}
	if s := b.Stats(); s.Subscriptions != 2 {
		t.Fatalf("%d subscriptions, want 2: an unconfirmed one is kept", s.Subscriptions)
	}
}

// fakeServer speaks just enough of the NATS protocol for a client to
// connect, then counts the SUBs and PINGs it reads and answers each PING
// after pongDelay, or never if pongDelay is negative: a server as slow or
// as mute as a test needs.
type fakeServer struct {
	ln          net.Listener
	pongDelay   time.Duration
	subs, pings atomic.Int64
	wg          sync.WaitGroup
}

// newFakeServer listens on 127.0.0.1 until cleanup.
func newFakeServer(tb testing.TB, pongDelay time.Duration) *fakeServer {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	fs := &fakeServer{ln: ln, pongDelay: pongDelay}
	var mu sync.Mutex
	var conns []net.Conn
	fs.wg.Add(1)
	go func() {
		defer fs.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
			fs.wg.Add(1)
			go func() {
				defer fs.wg.Done()
				fs.serve(conn)
			}()
		}
	}()
	tb.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		fs.wg.Wait()
	})
	return fs
}

func (fs *fakeServer) url() string { return "nats://" + fs.ln.Addr().String() }

// serve handles one client connection until it ends.
func (fs *fakeServer) serve(conn net.Conn) {
	const info = `INFO {"server_id":"fake","server_name":"fake","version":"2.14.5","proto":1,"headers":true,"max_payload":1048576}` + "\r\n"
	var wmu sync.Mutex // PONGs are written from timers
	write := func(s string) {
		wmu.Lock()
		defer wmu.Unlock()
		_, _ = conn.Write([]byte(s))
	}
	write(info)
	r := bufio.NewReader(conn)
	var timers sync.WaitGroup
	defer timers.Wait()
	handshake := true
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		switch {
		case strings.HasPrefix(line, "PING") && handshake:
			handshake = false // the PING after CONNECT: answered at once, or the client never connects
			write("PONG\r\n")
		case strings.HasPrefix(line, "PING"):
			fs.pings.Add(1)
			if fs.pongDelay >= 0 {
				timers.Add(1)
				time.AfterFunc(fs.pongDelay, func() {
					defer timers.Done()
					write("PONG\r\n")
				})
			}
		case strings.HasPrefix(line, "SUB "):
			fs.subs.Add(1)
		}
	}
}
