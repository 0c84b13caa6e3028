// Package redistest runs the real redis-server that tests of Redis-backed
// code use: CI's, whose address .ci/run exports in WSROOM_REDIS_ADDR, or
// else one started from PATH on a free loopback port. Without either, tests
// skip, unless WSROOM_CI is set: CI must not pass without running them.
package redistest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/wsroom/wsroom/internal/wstest"
)

var shared struct {
	once sync.Once
	srv  *Server
	err  error
}

// StopShared stops the shared server if the tests started it; call it from
// TestMain after m.Run.
func StopShared() {
	if shared.srv != nil && shared.srv.dir != "" {
		shared.srv.Stop()
		_ = os.RemoveAll(shared.srv.dir)
	}
}

// Shared returns the address of the Redis server the tests share.
func Shared(t testing.TB) string {
	t.Helper()
	shared.once.Do(func() {
		if addr := os.Getenv("WSROOM_REDIS_ADDR"); addr != "" {
			if err := ping(addr); err != nil {
				shared.err = fmt.Errorf("WSROOM_REDIS_ADDR=%s: %w", addr, err)
			}
			shared.srv = &Server{Addr: addr}
			return
		}
		dir, err := os.MkdirTemp("", "wsroom-redis-")
		if err != nil {
			shared.err = err
			return
		}
		shared.srv, shared.err = startRedis(dir)
	})
	if shared.err != nil {
		if os.Getenv("WSROOM_REDIS_ADDR") != "" {
			t.Fatal(shared.err) // the server we were given must work
		}
		unavailable(t, shared.err)
	}
	return shared.srv.Addr
}

// Own starts a Redis server for t alone (one the test may stop and
// start again), stopped at cleanup.
func Own(t testing.TB) *Server {
	t.Helper()
	srv, err := startRedis(t.TempDir())
	if err != nil {
		unavailable(t, err)
	}
	t.Cleanup(srv.Stop)
	return srv
}

// unavailable skips, or fails under CI, when there is no server.
func unavailable(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("WSROOM_CI") != "" {
		t.Fatalf("no Redis server for the tests (WSROOM_CI is set, so this fails): %v", err)
	}
	t.Skipf("no Redis server: %v; install redis-server (e.g. apt-get install redis-server) or set WSROOM_REDIS_ADDR", err)
}

// Server is a redis-server process on a loopback port.
type Server struct {
	Addr string
	dir  string
	mu   sync.Mutex
	cmd  *exec.Cmd
}

// startRedis starts redis-server on a free port, trying three ports (one
// may be taken between finding it free and redis-server binding it).
func startRedis(dir string) (*Server, error) {
	path, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		s := &Server{Addr: addr, dir: dir}
		if err = s.launch(path); err == nil || attempt == 2 {
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

func (s *Server) launch(path string) error {
	_, port, _ := net.SplitHostPort(s.Addr)
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
	if err := waitReady(s.Addr); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		out, _ := os.ReadFile(log.Name())
		return fmt.Errorf("redis-server on %s: %v\n%s", s.Addr, err, out)
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

// Stop kills the server, as a crash would, and waits for it to end.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd := s.cmd
	s.cmd = nil
	s.mu.Unlock()
	if cmd != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
}

// Restart starts a new server on the same port.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.launch(path); err != nil {
		t.Fatal(err)
	}
}
