package main

import (
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

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
	for _, flag := range []string{"-nats", "-redis"} {
		t.Run(flag, func(t *testing.T) {
			url := strings.TrimPrefix(flag, "-") + "://" + deadAddr(t)
			p := startBinary(t, bin, flag, url, "-broker-wait", "300ms")
			log := p.stderr.String()
			for _, want := range []string{"INFO broker broker=", "url=" + url, "prefix=wsroom", "ERROR broker unreachable at start-up", "connection refused", "WARN starting anyway"} {
				if !strings.Contains(log, want) {
					t.Errorf("start-up log lacks %q:\n%s", want, log)
				}
			}
			// And it serves: a member joins and is answered.
			c := wstest.Dial(t, roomURL(p.base, "local", "ann", ""))
			expect(t, c, "joined", "ann", nil)
		})
	}
}

func TestUnreachableRequiredBrokerAtStartUpExitsWithOne(t *testing.T) {
	bin := chatBinary(t)
	for _, flag := range []string{"-nats", "-redis"} {
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
