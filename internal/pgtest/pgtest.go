// Package pgtest runs the real PostgreSQL server that the tests of
// pgbroker and examples/chat use: CI's, whose URL .ci/run exports in
// WSROOM_PG_URL, or else a throwaway cluster made with initdb from PATH
// or /usr/lib/postgresql/*/bin and started on a free loopback port. PostgreSQL refuses to run as root: run
// as root, the cluster belongs to the postgres user and its commands run
// through runuser. Without a server, tests skip, unless WSROOM_CI is set:
// CI must not pass without running them.
package pgtest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"testing"
)

var shared struct {
	once sync.Once
	srv  *Server
	err  error
}

// Shared returns the URL of the server the tests share.
func Shared(t testing.TB) string {
	t.Helper()
	shared.once.Do(func() {
		if url := os.Getenv("WSROOM_PG_URL"); url != "" {
			shared.srv = &Server{URL: url}
			return
		}
		shared.srv, shared.err = Start()
	})
	if shared.err != nil {
		unavailable(t, shared.err)
	}
	return shared.srv.URL
}

// StopShared stops and removes the shared cluster if the tests made it;
// call it from TestMain after m.Run.
func StopShared() {
	if shared.srv != nil && shared.srv.dir != "" {
		shared.srv.Remove()
	}
}

// Own starts a cluster for t alone (one the test may stop and start
// again), removed at cleanup.
func Own(t testing.TB) *Server {
	t.Helper()
	srv, err := Start()
	if err != nil {
		unavailable(t, err)
	}
	t.Cleanup(srv.Remove)
	return srv
}

// unavailable skips, or fails under CI, when there is no server.
func unavailable(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("WSROOM_CI") != "" {
		t.Fatalf("no PostgreSQL server for the tests (WSROOM_CI is set, so this fails): %v", err)
	}
	t.Skipf("no PostgreSQL server: %v; install PostgreSQL (e.g. apt-get install postgresql) or set WSROOM_PG_URL", err)
}

// Server is a throwaway PostgreSQL cluster on a loopback port.
type Server struct {
	URL  string // postgres://postgres@127.0.0.1:port/postgres?sslmode=disable
	dir  string // the cluster's directory: data/, the socket and the log
	bin  string // the directory of initdb, pg_ctl and postgres
	port string
	mu   sync.Mutex
	up   bool
}

// Start makes a cluster in a new temporary directory and starts it on a
// free port. The cluster trades durability for speed (fsync off): it is
// thrown away.
func Start() (*Server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "wsroom-pg-")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, bin: bin}
	if err := s.chown(); err != nil {
		s.Remove()
		return nil, err
	}
	if out, err := s.run("initdb", "-D", s.data(), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "-N"); err != nil {
		s.Remove()
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	for attempt := 0; ; attempt++ { // a free port may be taken before postgres binds it
		if s.port, err = freePort(); err != nil {
			s.Remove()
			return nil, err
		}
		s.URL = "postgres://postgres@127.0.0.1:" + s.port + "/postgres?sslmode=disable"
		if err = s.start(); err == nil {
			return s, nil
		}
		if attempt == 2 {
			s.Remove()
			return nil, err
		}
	}
}

func (s *Server) data() string { return filepath.Join(s.dir, "data") }

// Stop stops the server (a fast shutdown: sessions are ended, as in a
// restart) and waits for it to end.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.up {
		_, _ = s.run("pg_ctl", "-D", s.data(), "-m", "fast", "-w", "stop")
		s.up = false
	}
}

// Restart starts the stopped server again on the same port.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
}

// Remove stops the server and deletes its directory.
func (s *Server) Remove() {
	s.Stop()
	_ = os.RemoveAll(s.dir)
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	opts := "-p " + s.port + " -k " + s.dir + " -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=200"
	out, err := s.run("pg_ctl", "-D", s.data(), "-l", filepath.Join(s.dir, "log"), "-o", opts, "-w", "-t", "30", "start")
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(s.dir, "log"))
		return fmt.Errorf("pg_ctl start on port %s: %v\n%s\n%s", s.port, err, out, log)
	}
	s.up = true
	return nil
}

// run runs one of the server's programs, as the postgres user when the
// tests run as root.
func (s *Server) run(name string, args ...string) ([]byte, error) {
	path := filepath.Join(s.bin, name)
	var cmd *exec.Cmd
	if os.Geteuid() == 0 {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	return cmd.CombinedOutput()
}

// chown gives the cluster's directory to the postgres user when the tests
// run as root.
func (s *Server) chown() error {
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return fmt.Errorf("running as root needs a postgres user to run the server as: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return os.Chown(s.dir, uid, gid)
}

// binDir finds PostgreSQL's server programs: initdb on PATH, or the newest
// of Debian's /usr/lib/postgresql/<version>/bin.
func binDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("initdb not found on PATH or in /usr/lib/postgresql/*/bin")
}

func version(bin string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(bin)))
	return n
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port, nil
}
