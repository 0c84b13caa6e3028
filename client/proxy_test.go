package client_test

import (
	"io"
	"net"
	"strings"
	"sync"
	"testing"
)

// proxy is a loopback TCP proxy in front of a server, whose connections a
// test cuts: the client and the server each see their socket closed, as
// when a network path dies.
type proxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]bool // socket → frozen: what it is sent is dropped
	held  bool              // new connections are closed at once
}

// newProxy forwards a loopback port to target (an http:// URL's host),
// until the test ends.
func newProxy(t testing.TB, targetURL string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: strings.TrimPrefix(targetURL, "http://"), conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		p.Hold(true)
		_ = ln.Close()
		p.Cut()
		p.wg.Wait()
	})
	return p
}

// URL is the proxy's ws:// URL of path.
func (p *proxy) URL(path string) string { return "ws://" + p.ln.Addr().String() + path }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = in.Close()
			continue
		}
		p.mu.Lock()
		held := p.held
		if !held {
			p.conns[in], p.conns[out] = false, false
		}
		p.mu.Unlock()
		if held {
			_ = in.Close()
			_ = out.Close()
			continue
		}
		p.wg.Add(2)
		go p.pipe(in, out)
		go p.pipe(out, in)
	}
}

// pipe copies from src to dst until either ends, then closes both.
func (p *proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(blackhole{p, dst}, src)
	_ = dst.Close()
	_ = src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

// Cut closes every connection through the proxy, both ends, and returns
// how many sockets it closed.
func (p *proxy) Cut() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.conns)
	for c := range p.conns {
		_ = c.Close()
		delete(p.conns, c)
	}
	return n
}

// Freeze makes the proxy drop everything sent on its connections of now,
// both ways, without closing them: a network path that went silent.
func (p *proxy) Freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		p.conns[c] = true
	}
}

// blackhole writes to a socket of the proxy, unless it is frozen.
type blackhole struct {
	p *proxy
	net.Conn
}

func (b blackhole) Write(data []byte) (int, error) {
	b.p.mu.Lock()
	frozen := b.p.conns[b.Conn]
	b.p.mu.Unlock()
	if frozen {
		return len(data), nil
	}
	return b.Conn.Write(data)
}

// Hold makes the proxy refuse (accept, then close) new connections while
// on is true: the server looks down.
func (p *proxy) Hold(on bool) {
	p.mu.Lock()
	p.held = on
	p.mu.Unlock()
}
