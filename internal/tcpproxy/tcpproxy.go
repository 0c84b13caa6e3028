// Package tcpproxy is a loopback TCP proxy in front of a server, for tests
// that take the network away. It cuts connections (the client and the
// server each see their socket closed, as when a network path dies),
// refuses new ones while the server should look down, and makes
// connections go silent without closing them.
package tcpproxy

import (
	"net"
	"sync"
	"testing"
)

// Proxy forwards the connections it accepts to a target. All methods may
// be called concurrently.
type Proxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup

	mu      sync.Mutex
	changed *sync.Cond        // signalled when stalled or closed changes
	conns   map[net.Conn]bool // socket → frozen: what it is sent is dropped
	down    bool              // new connections are closed at once
	stalled bool              // nothing goes from the server to the clients
	closed  bool
}

// New listens on a free loopback port and forwards to target (HOST:PORT)
// until tb's cleanup.
func New(tb testing.TB, target string) *Proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	p.changed = sync.NewCond(&p.mu)
	p.wg.Add(1)
	go p.accept()
	tb.Cleanup(func() {
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		_ = ln.Close()
		p.Cut()
		p.wg.Wait()
	})
	return p
}

// Addr is the proxy's HOST:PORT.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut closes every connection through the proxy, both ends, ends a Stall,
// and returns how many sockets it closed. New connections are let through.
func (p *Proxy) Cut() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.conns)
	for c := range p.conns {
		_ = c.Close()
	}
	clear(p.conns)
	p.stalled = false
	p.changed.Broadcast()
	return n
}

// Down cuts every connection and refuses (accepts, then closes) new ones
// until Up: the server looks down.
func (p *Proxy) Down() {
	p.mu.Lock()
	p.down = true
	p.mu.Unlock()
	p.Cut()
}

// Up lets new connections through again.
func (p *Proxy) Up() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

// Freeze makes the proxy drop everything sent on its connections of now,
// both ways, without closing them: a network path that went silent.
func (p *Proxy) Freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		p.conns[c] = true
	}
}

// Stall holds everything the server sends, on every connection, until Cut,
// Down or cleanup: the clients' requests reach the server, its answers do
// not come back.
func (p *Proxy) Stall() {
	p.mu.Lock()
	p.stalled = true
	p.mu.Unlock()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.open() {
			_ = client.Close()
			continue
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = client.Close()
			continue
		}
		if !p.track(client, server) {
			continue
		}
		p.wg.Add(2)
		go p.pipe(server, client, false)
		go p.pipe(client, server, true)
	}
}

// open reports whether the proxy lets new connections through.
func (p *Proxy) open() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.down && !p.closed
}

// track adds the sockets of a new connection, or closes them if the proxy
// no longer lets it through.
func (p *Proxy) track(client, server net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down || p.closed {
		_ = client.Close()
		_ = server.Close()
		return false
	}
	p.conns[client], p.conns[server] = false, false
	return true
}

// pipe copies from src to dst until either ends, then closes both;
// toClient says dst is the client's socket, which Stall holds.
func (p *Proxy) pipe(dst, src net.Conn, toClient bool) {
	defer p.wg.Done()
	defer p.untrack(dst, src)
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			send, open := p.await(dst, toClient)
			if !open {
				return
			}
			if send {
				if _, err := dst.Write(buf[:n]); err != nil {
					return
				}
			}
		}
		if err != nil {
			return
		}
	}
}

// await waits while a write to the client is stalled, then reports whether
// to write to dst (not when it is frozen) and whether the proxy is still
// open.
func (p *Proxy) await(dst net.Conn, toClient bool) (send, open bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for toClient && p.stalled && !p.closed {
		p.changed.Wait()
	}
	return !p.conns[dst], !p.closed
}

func (p *Proxy) untrack(conns ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
		delete(p.conns, c)
	}
}
