package main

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/wsroom/wsroom/internal/redistest"
	"github.com/wsroom/wsroom/internal/wstest"
)

// Two chat processes on different ports with the same broker form one
// chat: what a member of a room says on one reaches the members of that
// room on the other, in order, with joined and left announcements. Rooms
// keep a history exactly when the broker does: all three do, so events
// carry seq and epoch.

func TestTwoInstancesWithNATSFormOneChat(t *testing.T) {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true, JetStream: true, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	defer func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	}()
	if !srv.ReadyForConnections(wstest.Timeout) {
		t.Fatal("nats-server not ready")
	}
	url := fmt.Sprintf("nats://%s", srv.Addr().(*net.TCPAddr))
	twoInstancesFormOneChat(t, "-nats", url)
}

func TestTwoInstancesWithRedisFormOneChat(t *testing.T) {
	twoInstancesFormOneChat(t, "-redis", "redis://"+redistest.Shared(t))
}

func TestTwoInstancesWithPostgresFormOneChat(t *testing.T) {
	twoInstancesFormOneChat(t, "-postgres", pgShared(t))
}

func twoInstancesFormOneChat(t *testing.T, flag, url string) {
	bin := chatBinary(t)
	a, b := startBinary(t, bin, flag, url), startBinary(t, bin, flag, url)
	room := fmt.Sprintf("cluster-%d", time.Now().UnixNano())
	ann := wstest.Dial(t, roomURL(a.base, room, "ann", ""))
	expect(t, ann, "joined", "ann", nil)
	bob := wstest.Dial(t, roomURL(b.base, room, "bob", ""))
	expect(t, bob, "joined", "bob", nil)

	// The brokers subscribe asynchronously: bob speaks until ann hears him.
	deadline := time.Now().Add(2 * wstest.Timeout)
	for heard := false; !heard; {
		if time.Now().After(deadline) {
			t.Fatal("ann never heard bob through the broker")
		}
		sendMessage(t, bob, "probe")
		// Bob's own probe comes back; ann's joined may come first, if A's
		// publish of it reached the broker after B subscribed.
		for f := next(t, bob); f.Type != "message" || f.Username != "bob"; f = next(t, bob) {
			if f.Type != "joined" || f.Username != "ann" {
				t.Fatalf("bob got %s while waiting for his probe", f.raw)
			}
		}
		for {
			ev, ok := ann.NextWithin(50 * time.Millisecond)
			if !ok {
				break
			}
			f, err := parseChat(ev.Data)
			if err != nil {
				t.Fatal(err)
			}
			if f.Type == "message" && f.Username == "bob" {
				heard = true
			}
		}
	}
	// Probes may still be on their way: bob sends a marker, and as the
	// broker keeps one publisher's order, ann has had every probe once the
	// marker reaches her.
	sendMessage(t, bob, "sync")
	for {
		f := next(t, ann)
		if f.Type == "message" && f.Username == "bob" && *f.Content == "sync" {
			break
		}
	}

	const n = 500
	for i := range n {
		sendMessage(t, bob, fmt.Sprint(i))
	}
	for i := range n {
		if f := expect(t, ann, "message", "bob", str(fmt.Sprint(i))); f.Seq == 0 {
			t.Fatalf("%s: %s: want a position", flag, f.raw)
		}
	}
	sendMessage(t, ann, "hello bob")
	expect(t, ann, "message", "ann", str("hello bob"))
	for {
		f := next(t, bob)
		if f.Type == "message" && f.Username == "ann" {
			if *f.Content != "hello bob" {
				t.Fatalf("bob got %s", f.raw)
			}
			break
		}
	}
	bob.Close()
	expect(t, ann, "left", "bob", nil)
}
