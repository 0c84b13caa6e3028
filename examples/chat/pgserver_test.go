package main

// The PostgreSQL servers of the -postgres tests: CI's, whose URL .ci/run
// exports in WSROOM_PG_URL, and throwaway clusters a test may stop and
// start (initdb from /usr/lib/postgresql/*/bin or PATH, on a free loopback
// port; as root the cluster belongs to the postgres user, since PostgreSQL
// refuses to run as root). pgbroker's own helper (pgbroker/internal/pgtest)
// is internal to that module, so this is its short twin.

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
)

// pgShared returns the URL of the server the tests share: WSROOM_PG_URL,
// or a cluster of the test's own. Without either the test skips, or under
// WSROOM_CI fails.
func pgShared(t *testing.T) string {
	t.Helper()
	if url := os.Getenv("WSROOM_PG_URL"); url != "" {
		return url
	}
	return pgOwn(t).url
}

// pgServer is a throwaway PostgreSQL cluster on a loopback port.
type pgServer struct {
	url, dir, bin, port string
	mu                  sync.Mutex
	up                  bool
}

// pgOwn makes a cluster for t alone and starts it; it is removed at
// cleanup.
func pgOwn(t *testing.T) *pgServer {
	t.Helper()
	bin, err := pgBinDir()
	if err != nil {
		pgUnavailable(t, err)
	}
	dir, err := os.MkdirTemp("", "chat-pg-") // not t.TempDir: its parent is closed to the postgres user
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	s := &pgServer{dir: dir, bin: bin}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			pgUnavailable(t, fmt.Errorf("running as root needs a postgres user: %w", err))
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(s.dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := s.run("initdb", "-D", s.data(), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "-N"); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	t.Cleanup(s.stop)
	for attempt := 0; ; attempt++ { // a free port may be taken before postgres binds it
		s.port = freePort(t)
		s.url = "postgres://postgres@127.0.0.1:" + s.port + "/postgres?sslmode=disable"
		if err = s.start(); err == nil {
			return s
		}
		if attempt == 2 {
			t.Fatal(err)
		}
	}
}

func (s *pgServer) data() string { return filepath.Join(s.dir, "data") }

func (s *pgServer) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	opts := "-p " + s.port + " -k " + s.dir + " -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
	out, err := s.run("pg_ctl", "-D", s.data(), "-l", filepath.Join(s.dir, "log"), "-o", opts, "-w", "-t", "30", "start")
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(s.dir, "log"))
		return fmt.Errorf("pg_ctl start on port %s: %v\n%s\n%s", s.port, err, out, log)
	}
	s.up = true
	return nil
}

// stop stops the server with a fast shutdown (sessions end, as in a
// restart) and waits for it.
func (s *pgServer) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.up {
		_, _ = s.run("pg_ctl", "-D", s.data(), "-m", "fast", "-w", "stop")
		s.up = false
	}
}

// restart starts the stopped server again on its port.
func (s *pgServer) restart(t *testing.T) {
	t.Helper()
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
}

// run runs one of the server's programs, as the postgres user under root.
func (s *pgServer) run(name string, args ...string) ([]byte, error) {
	path := filepath.Join(s.bin, name)
	if os.Geteuid() == 0 {
		return exec.Command("runuser", append([]string{"-u", "postgres", "--", path}, args...)...).CombinedOutput()
	}
	return exec.Command(path, args...).CombinedOutput()
}

// pgBinDir finds initdb on PATH or in the newest /usr/lib/postgresql/*/bin.
func pgBinDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	version := func(d string) int { n, _ := strconv.Atoi(filepath.Base(filepath.Dir(d))); return n }
	slices.SortFunc(dirs, func(a, b string) int { return version(b) - version(a) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("initdb not found on PATH or in /usr/lib/postgresql/*/bin")
}

// pgUnavailable skips, or fails under CI, when there is no server.
func pgUnavailable(t *testing.T, err error) {
	t.Helper()
	if os.Getenv("WSROOM_CI") != "" {
		t.Fatalf("no PostgreSQL server for the tests (WSROOM_CI is set, so this fails): %v", err)
	}
	t.Skipf("no PostgreSQL server: %v; install PostgreSQL (apt-get install postgresql) or set WSROOM_PG_URL", err)
}

// freePort returns a loopback port nothing listens on.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}
