package natsbroker_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/brokertest"
	"github.com/wsroom/wsroom/internal/wstest"
	"github.com/wsroom/wsroom/natsbroker"
)

// childEnv, when set in the environment of this test binary, makes it a
// presence instance instead of running tests: "url prefix lease-ms".
const childEnv = "WSROOM_PRESENCE_CHILD"

// presenceChildMain serves a presence instance and exits, if this process
// was started as one (see startChild); otherwise it returns at once. The
// instance serves brokertest.PresenceHandler at /{room}, the room's
// presence at /who/{room}, and its registry's stats at /stats; it prints
// its URL, then serves until its stdin closes (the test ended, or died).
func presenceChildMain() {
	spec := os.Getenv(childEnv)
	if spec == "" {
		return
	}
	var url, prefix string
	var leaseMs int64
	if _, err := fmt.Sscan(spec, &url, &prefix, &leaseMs); err != nil {
		fmt.Fprintln(os.Stderr, "bad", childEnv, err)
		os.Exit(2)
	}
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(10*time.Millisecond))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	broker, err := natsbroker.New(context.Background(), nc, natsbroker.WithPrefix(prefix), natsbroker.WithPresence())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	rooms := wsroom.NewRooms[brokertest.PresenceMsg](wsroom.WithBroker(broker),
		wsroom.WithPresenceLease(time.Duration(leaseMs)*time.Millisecond))
	mux := http.NewServeMux()
	mux.Handle("GET /{room}", wsroom.New(brokertest.PresenceHandler(rooms), wsroom.WithRateLimit(0, 0)))
	mux.HandleFunc("GET /who/{room}", func(w http.ResponseWriter, r *http.Request) {
		who, err := brokertest.Who(rooms, r.PathValue("room"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		_ = json.NewEncoder(w).Encode(who)
	})
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(rooms.Stats())
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	go func() { _ = http.Serve(ln, mux) }()
	fmt.Println("URL http://" + ln.Addr().String())
	_, _ = io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}

// child is a presence instance in a process of its own.
type child struct {
	URL string
	cmd *exec.Cmd
}

// startChild starts a presence instance on the NATS server at natsURL, with prefix
// and lease, as a child process of the test; it is killed at cleanup if
// the test has not killed it.
func startChild(t testing.TB, natsURL, prefix string, lease time.Duration) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %d", childEnv, natsURL, prefix, lease.Milliseconds()))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- s
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case s := <-line:
		url, ok := strings.CutPrefix(strings.TrimSpace(s), "URL ")
		if !ok {
			t.Fatalf("the child printed %q, not its URL", s)
		}
		return &child{URL: url, cmd: cmd}
	case <-time.After(wstest.Timeout):
		t.Fatal("the child did not start within", wstest.Timeout)
		return nil
	}
}

// kill kills the child with SIGKILL: no goodbye reaches NATS.
func (c *child) kill(t testing.TB) {
	t.Helper()
	if err := c.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
}

// who returns the child's presence of room ("key:connections", sorted),
// or an error.
func (c *child) who(room string) (string, error) {
	resp, err := http.Get(c.URL + "/who/" + room)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d: %s %v", resp.StatusCode, body, err)
	}
	var who []string
	if err := json.Unmarshal(body, &who); err != nil {
		return "", err
	}
	return strings.Join(who, " "), nil
}

// stats returns the child's registry stats.
func (c *child) stats(t testing.TB) wsroom.RoomsStats {
	t.Helper()
	resp, err := http.Get(c.URL + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st wsroom.RoomsStats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// awaitWho waits, for at most within, until every child's presence of
// room is want, and returns how long that took.
func awaitWho(t testing.TB, within time.Duration, room, want string, children ...*child) time.Duration {
	t.Helper()
	start := time.Now()
	for i, c := range children {
		var got string
		var err error
		wstest.WaitWithin(t, within-time.Since(start), "child "+strconv.Itoa(i)+"'s presence to be "+want, func() bool {
			got, err = c.who(room)
			return err == nil && got == want
		})
	}
	return time.Since(start)
}

func TestMain(m *testing.M) {
	presenceChildMain()
	os.Exit(m.Run())
}
