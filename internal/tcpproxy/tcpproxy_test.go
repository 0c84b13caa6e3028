package tcpproxy_test

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/wsroom/wsroom/internal/tcpproxy"
)

func TestCutClosesBothEndsAndDownRefusesUntilUp(t *testing.T) {
	p := tcpproxy.New(t, echoServer(t))
	c := dial(t, p)
	roundTrip(t, c)
	if n := p.Cut(); n != 2 {
		t.Fatalf("Cut closed %d sockets, want 2", n)
	}
	expectClosed(t, c)
	roundTrip(t, dial(t, p)) // Cut lets new connections through

	p.Down()
	expectClosed(t, dial(t, p))
	p.Up()
	roundTrip(t, dial(t, p))
}

func TestFreezeDropsAndStallHoldsUntilCut(t *testing.T) {
	p := tcpproxy.New(t, echoServer(t))
	frozen := dial(t, p)
	roundTrip(t, frozen)
	p.Freeze()
	write(t, frozen, "x")
	expectSilent(t, frozen)

	p.Stall()
	stalled := dial(t, p)
	write(t, stalled, "y")
	expectSilent(t, stalled)
	p.Cut()
	expectClosed(t, stalled)
	roundTrip(t, dial(t, p)) // Cut ends the stall
}

// echoServer serves TCP echo on a loopback port until cleanup.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

func dial(t *testing.T, p *tcpproxy.Proxy) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func write(t *testing.T, c net.Conn, s string) {
	t.Helper()
	if _, err := c.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
}

func roundTrip(t *testing.T, c net.Conn) {
	t.Helper()
	write(t, c, "ping")
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo %q, %v; want %q", buf, err, "ping")
	}
}

func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read %d bytes, %v; want EOF", n, err)
	}
}

func expectSilent(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, err := c.Read(make([]byte, 1)); !isTimeout(err) {
		t.Fatalf("read %d bytes, %v; want nothing", n, err)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
