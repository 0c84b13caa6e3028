package redisbroker_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/brokertest"
	"github.com/wsroom/wsroom/internal/wstest"
	"github.com/wsroom/wsroom/redisbroker"
)

// The tests run against a real Redis server: CI's, whose address .ci/run
// exports in WSROOM_REDIS_ADDR, or else one they start from PATH on a free
// loopback port and stop when they end. Without either they skip, unless
// WSROOM_CI is set: CI must not pass without running them.

var shared struct {
	once sync.Once
	srv  *redisServer
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.srv != nil && shared.srv.dir != "" { // one the tests started
		shared.srv.stop()
		_ = os.RemoveAll(shared.srv.dir)
	}
	os.Exit(code)
}

// redisAddr returns the address of the Redis server the tests share.
func redisAddr(t testing.TB) string {
	t.Helper()
	shared.once.Do(func() {
		if addr := os.Getenv("WSROOM_REDIS_ADDR"); addr != "" {
			if err := ping(addr); err != nil {
				shared.err = fmt.Errorf("WSROOM_REDIS_ADDR=%s: %w", addr, err)
			}
			shared.srv = &redisServer{addr: addr}
			return
		}
		dir, err := os.MkdirTemp("", "wsroom-redis-")
		if err != nil {
			shared.err = err
			return
		}
		shared.srv, shared.err = startRedis(dir, "")
	})
	if shared.err != nil {
		if os.Getenv("WSROOM_REDIS_ADDR") != "" {
			t.Fatal(shared.err) // the server we were given must work
		}
		unavailable(t, shared.err)
	}
	return shared.srv.addr
}

// ownRedis starts a Redis server for t alone (one the test may stop and
// start again), stopped at cleanup.
func ownRedis(t testing.TB) *redisServer {
	t.Helper()
	srv, err := startRedis(t.TempDir(), "")
	if err != nil {
		unavailable(t, err)
	}
	t.Cleanup(srv.stop)
	return srv
}

func unavailable(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("WSROOM_CI") != "" {
		t.Fatalf("no Redis server for the tests (WSROOM_CI is set, so this fails): %v", err)
	}
	t.Skipf("no Redis server: %v; install redis-server (e.g. apt-get install redis-server) or set WSROOM_REDIS_ADDR", err)
}

// redisServer is a redis-server process on a loopback port.
type redisServer struct {
	addr, dir string
	mu        sync.Mutex
	cmd       *exec.Cmd
}

// startRedis starts redis-server on addr, or on a free port if addr is "".
func startRedis(dir, addr string) (*redisServer, error) {
	path, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		a := addr
		if a == "" {
			if a, err = freeAddr(); err != nil {
				return nil, err
			}
		}
		s := &redisServer{addr: a, dir: dir}
		if err = s.launch(path); err == nil || addr != "" || attempt == 2 {
			return s, err
		}
	}
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func (s *redisServer) launch(path string) error {
	_, port, _ := net.SplitHostPort(s.addr)
	log, err := os.OpenFile(filepath.Join(s.dir, "redis-"+port+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	cmd := exec.Command(path, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", s.dir)
	cmd.Stdout, cmd.Stderr = log, log
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return err
	}
	if err := waitReady(s.addr); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		out, _ := os.ReadFile(log.Name())
		return fmt.Errorf("redis-server on %s: %v\n%s", s.addr, err, out)
	}
	s.mu.Lock()
	s.cmd = cmd
	s.mu.Unlock()
	return nil
}

// waitReady waits until the server at addr answers PING.
func waitReady(addr string) error {
	deadline := time.Now().Add(wstest.Timeout)
	for {
		err := ping(addr)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := io.WriteString(c, "PING\r\n"); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// stop kills the server, as a crash would, and waits for it to end.
func (s *redisServer) stop() {
	s.mu.Lock()
	cmd := s.cmd
	s.cmd = nil
	s.mu.Unlock()
	if cmd != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
}

// restart starts a new server on the same port.
func (s *redisServer) restart(t testing.TB) {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.launch(path); err != nil {
		t.Fatal(err)
	}
}

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

// newBroker returns a Broker on its own client of addr (a process of its
// own), both closed at cleanup.
func newBroker(t testing.TB, addr string, opts []func(*redis.Options), bopts ...redisbroker.Option) *redisbroker.Broker {
	t.Helper()
	b := redisbroker.New(newClient(t, addr, opts...), bopts...)
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

// waitFor polls cond until it holds, failing the test after
// wstest.Timeout.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wstest.Timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
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
		go p.pipe(l, c, s)
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

// freeze silences every connection open now; later ones work.
func (p *proxy) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.links {
		l.frozen.Store(true)
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
