package redisbroker_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/brokertest"
	"github.com/wsroom/wsroom/internal/redistest"
	"github.com/wsroom/wsroom/redisbroker"
)

func TestMain(m *testing.M) {
	presenceChildMain() // a presence instance of the kill test, if started as one
	code := m.Run()
	redistest.StopShared()
	os.Exit(code)
}

func redisAddr(t testing.TB) string           { return redistest.Shared(t) }
func ownRedis(t testing.TB) *redistest.Server { return redistest.Own(t) }

// uniquePrefix returns a channel prefix no other test uses, so tests that
// share a server do not hear each other.
func uniquePrefix(t testing.TB) string {
	return "wsroomtest:" + strings.ReplaceAll(t.Name(), "/", ".") + ":" + randomHex(4)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newClient returns a client of the server at addr, closed at cleanup.
func newClient(t testing.TB, addr string, opts ...func(*redis.Options)) *redis.Client {
	t.Helper()
	o := &redis.Options{Addr: addr}
	for _, f := range opts {
		f(o)
	}
	c := redis.NewClient(o)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func named(name string) func(*redis.Options) { return func(o *redis.Options) { o.ClientName = name } }

func resp2(o *redis.Options) { o.Protocol = 2 }

// protocols are the client options of each RESP version the tests run.
var protocols = []struct {
	name string
	opts []func(*redis.Options)
}{{"RESP3", nil}, {"RESP2", []func(*redis.Options){resp2}}}

// newBroker returns a Broker on its own client of addr (a process of its
// own), both closed at cleanup.
func newBroker(t testing.TB, addr string, opts []func(*redis.Options), bopts ...redisbroker.Option) *redisbroker.Broker {
	t.Helper()
	b, err := redisbroker.New(context.Background(), newClient(t, addr, opts...), bopts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return b
}

// pair returns brokertest's Pair: two processes on the server at addr,
// with a prefix of their own.
func pair(addr string, opts ...func(*redis.Options)) brokertest.Pair {
	return func(t *testing.T) (a, b wsroom.Broker) {
		p := redisbroker.WithPrefix(uniquePrefix(t))
		return newBroker(t, addr, opts, p), newBroker(t, addr, opts, p)
	}
}

// subscribe subscribes deliver to room on b without waiting for ready.
func subscribe(b *redisbroker.Broker, room string, deliver func([]byte)) (cancel func()) {
	cancel, _ = b.Subscribe(room, deliver)
	return cancel
}

// numSub returns how many connections are subscribed to channel.
func numSub(t testing.TB, admin *redis.Client, channel string) int64 {
	t.Helper()
	n, err := admin.PubSubNumSub(context.Background(), channel).Result()
	if err != nil {
		t.Fatal(err)
	}
	return n[channel]
}

// clients returns CLIENT LIST's entries for the connections called name.
func clients(t testing.TB, admin *redis.Client, name string) []map[string]string {
	t.Helper()
	list, err := admin.ClientList(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]string
	for _, line := range strings.Split(strings.TrimSpace(list), "\n") {
		fields := map[string]string{}
		for _, kv := range strings.Fields(line) {
			k, v, _ := strings.Cut(kv, "=")
			fields[k] = v
		}
		if fields["name"] == name {
			out = append(out, fields)
		}
	}
	return out
}

// subscribers returns the pub/sub connections among CLIENT LIST's entries.
func subscribers(entries []map[string]string) []map[string]string {
	var out []map[string]string
	for _, e := range entries {
		if e["sub"] != "0" || e["psub"] != "0" || e["ssub"] != "0" || strings.Contains(e["flags"], "P") {
			out = append(out, e)
		}
	}
	return out
}

// proxy forwards TCP connections to a server; freeze makes the
// connections open so far silent both ways without closing them, as a
// network path that died would.
type proxy struct {
	ln     net.Listener
	target string
	delay  time.Duration // of the bytes going to the server
	mu     sync.Mutex
	links  []*link
	wg     sync.WaitGroup
}

type link struct {
	client, server net.Conn
	frozen         atomic.Bool
}

func newProxy(t testing.TB, target string) *proxy {
	t.Helper()
	return newSlowProxy(t, target, 0)
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		l := &link{client: c, server: s}
		p.mu.Lock()
		p.links = append(p.links, l)
		p.mu.Unlock()
		p.wg.Add(2)
		if p.delay > 0 {
			go p.pipeDelayed(l, c, s)
		} else {
			go p.pipe(l, c, s)
		}
		go p.pipe(l, s, c)
	}
}

// pipe copies from src to dst, dropping the bytes once the link is frozen.
func (p *proxy) pipe(l *link, src, dst net.Conn) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !l.frozen.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				err = werr
			}
		}
		if err != nil {
			_ = src.Close()
			_ = dst.Close()
			return
		}
	}
}

// newSlowProxy returns a proxy that holds the bytes going to the server
// for delay, keeping their order: what a client writes reaches the server
// late, as over a long network path.
func newSlowProxy(t testing.TB, target string, delay time.Duration) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, delay: delay}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// pipeDelayed is pipe with every chunk held for p.delay.
func (p *proxy) pipeDelayed(l *link, src, dst net.Conn) {
	defer p.wg.Done()
	type chunk struct {
		due  time.Time
		data []byte
	}
	q := make(chan chunk, 1024)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		failed := false
		for c := range q {
			time.Sleep(time.Until(c.due))
			if !failed && !l.frozen.Load() {
				if _, err := dst.Write(c.data); err != nil {
					failed = true
					_ = src.Close()
					_ = dst.Close()
				}
			}
		}
		_ = dst.Close()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			q <- chunk{due: time.Now().Add(p.delay), data: append([]byte(nil), buf[:n]...)}
		}
		if err != nil {
			_ = src.Close()
			close(q)
			return
		}
	}
}

// freeze silences every connection open now; later ones work.
func (p *proxy) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.links {
		l.frozen.Store(true)
	}
}

// sever closes every connection open now, as a server that went away
// would; later ones work.
func (p *proxy) sever() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.links {
		_ = l.client.Close()
		_ = l.server.Close()
	}
}

func (p *proxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	for _, l := range p.links {
		_ = l.client.Close()
		_ = l.server.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// blackhole accepts connections and never answers, as a server that hangs
// would; it returns its address.
func blackhole(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}

// counter is a deliver func that counts its calls and fails the test if
// two overlap.
type counter struct {
	t       testing.TB
	n, busy atomic.Int64
}

func (c *counter) deliver([]byte) {
	if c.busy.Add(1) != 1 {
		c.t.Error("deliver called concurrently")
	}
	c.n.Add(1)
	c.busy.Add(-1)
}

// recorder is a deliver func that keeps the payloads that are not
// brokertest's probes.
type recorder struct {
	mu       sync.Mutex
	payloads []string
}

func (r *recorder) deliver(p []byte) {
	if bytes.HasPrefix(p, []byte(`{"probe":`)) {
		return
	}
	r.mu.Lock()
	r.payloads = append(r.payloads, string(p))
	r.mu.Unlock()
}

func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.payloads)
}
