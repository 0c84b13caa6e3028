package main

import (
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/wsroom/wsroom/internal/pgtest"
	"github.com/wsroom/wsroom/internal/wstest"
)

// At start-up the chat says which broker it uses, and says plainly when
// the broker does not answer.

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

func TestUnreachableBrokerAtStartUpIsLoggedAndTheChatStartsAnyway(t *testing.T) {
	bin := chatBinary(t)
	for _, flag := range []string{"-nats", "-redis", "-postgres"} {
		t.Run(flag, func(t *testing.T) {
			url := strings.TrimPrefix(flag, "-") + "://" + deadAddr(t)
			p := startBinary(t, bin, flag, url, "-broker-wait", "300ms")
			log := p.stderr.String()
			for _, want := range []string{"INFO broker broker=", "url=" + url, "prefix=wsroom", "ERROR broker unreachable at start-up", "connection refused", "WARN starting anyway"} {
				if !strings.Contains(log, want) {
					t.Errorf("start-up log lacks %q:\n%s", want, log)
				}
			}
			// And it serves: a member joins and is answered. With history
			// nothing can be recorded, the member's joined included: it
			// is told so, and its message is answered with an error frame.
			// First who is here (this instance's own), then the error.
			c := wstest.Dial(t, roomURL(p.base, "local", "ann", ""))
			if who := expectPresence(t, c); who != "ann:1" {
				t.Fatalf("first frame: presence %q, want ann:1", who)
			}
			if reason := expectError(t, c); reason != joinNotRecorded {
				t.Fatalf("second frame: error %q, want %q", reason, joinNotRecorded)
			}
			sendMessage(t, c, "anyone?")
			if reason := expectError(t, c); reason != notRecorded {
				t.Fatalf("error frame %q, want %q", reason, notRecorded)
			}
		})
	}
}

// TestPostgresReachedAfterStartUpJoinsTheInstances: a chat started while
// its PostgreSQL is down keeps trying; once the database answers, its
// rooms, members who joined meanwhile included, are one with another
// instance's.
func TestPostgresReachedAfterStartUpJoinsTheInstances(t *testing.T) {
	bin := chatBinary(t)
	db := pgtest.Own(t)
	db.Stop()
	A := startBinary(t, bin, "-postgres", db.URL, "-broker-wait", "300ms")
	room := fmt.Sprintf("late-%d", time.Now().UnixNano())
	ann := wstest.Dial(t, roomURL(A.base, room, "ann", ""))
	expectPresence(t, ann)
	if reason := expectError(t, ann); reason != joinNotRecorded {
		t.Fatalf("after the presence frame: error %q, want %q", reason, joinNotRecorded)
	}
	sendMessage(t, ann, "too early")
	if reason := expectError(t, ann); reason != notRecorded {
		t.Fatalf("error frame %q, want %q", reason, notRecorded)
	}
	db.Restart(t)
	wstest.WaitFor(t, "the chat to reach PostgreSQL", func() bool { return strings.Contains(A.stderr.String(), "broker reached") })

	B := startBinary(t, bin, "-postgres", db.URL)
	bob := wstest.Dial(t, roomURL(B.base, room, "bob", ""))
	expect(t, bob, "joined", "bob", nil)
	expect(t, ann, "joined", "bob", nil) // ann's room subscribed once the database answered
	sendMessage(t, ann, "hello from A")
	expect(t, ann, "message", "ann", str("hello from A"))
	expect(t, bob, "message", "ann", str("hello from A"))
}

// TestBrokerFlagsAreMutuallyExclusive: two brokers at once is refused at
// start-up.
func TestBrokerFlagsAreMutuallyExclusive(t *testing.T) {
	bin := chatBinary(t)
	out, err := exec.Command(bin, "-addr", "127.0.0.1:0", "-redis", "redis://"+deadAddr(t), "-postgres", "postgres://"+deadAddr(t)).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "not several") {
		t.Fatalf("exit %v, want status 1 and the reason:\n%s", err, out)
	}
}

func TestUnreachableRequiredBrokerAtStartUpExitsWithOne(t *testing.T) {
	bin := chatBinary(t)
	for _, flag := range []string{"-nats", "-redis", "-postgres"} {
		t.Run(flag, func(t *testing.T) {
			url := strings.TrimPrefix(flag, "-") + "://" + deadAddr(t)
			cmd := exec.Command(bin, "-addr", "127.0.0.1:0", flag, url, "-broker-wait", "300ms", "-broker-required")
			done := make(chan struct{})
			var out []byte
			var err error
			go func() {
				out, err = cmd.CombinedOutput()
				close(done)
			}()
			select {
			case <-done:
			case <-time.After(wstest.Timeout):
				_ = cmd.Process.Kill()
				<-done
				t.Fatal("the chat did not exit")
			}
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
				t.Fatalf("exit: %v, want status 1\n%s", err, out)
			}
			if !strings.Contains(string(out), "broker unreachable at start-up") || strings.Contains(string(out), "chat listening") {
				t.Fatalf("log:\n%s\nwant the unreachable line and no listening line", out)
			}
		})
	}
}

func TestListeningURLOnAllInterfacesIsLocalhost(t *testing.T) {
	for addr, want := range map[string]string{
		"[::]:3000":      "http://localhost:3000",
		"0.0.0.0:3000":   "http://localhost:3000",
		"127.0.0.1:3001": "http://127.0.0.1:3001",
		"[::1]:3002":     "http://[::1]:3002",
	} {
		ta, err := net.ResolveTCPAddr("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := browserURL(ta); got != want {
			t.Errorf("browserURL(%s) = %s, want %s", addr, got, want)
		}
	}
}
