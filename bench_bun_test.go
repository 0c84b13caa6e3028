//go:build linux

package wsroom_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lxzan/gws"
)

// bunHub is the Bun side: internal/bunpeer/server.js in a Bun process of
// its own (uWebSockets underneath; see the script for what it does and
// does not check), driven over a control WebSocket. Publish sends the
// benchmark's message to the control connection as "p <room> <seq>
// <sent>"; the server builds the frame and publishes it to the room's
// topic, so that per message it reads one small frame the in-process hubs
// do not, and per delivery the same. CPU and RSS are the Bun process's,
// from /proc.
type bunHub struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	read   chan struct{} // closed when the server's stdout is drained
	url    string
	ctl    *gws.Conn
	events *bunEvents
	ctlMu  sync.Mutex // one control request at a time
}

// bunEvents is the control connection's handler.
type bunEvents struct {
	gws.BuiltinEventHandler
	joined  chan struct{} // closed when the server says "joined"
	replies chan string
	ended   chan struct{} // closed when the connection has closed
}

func (e *bunEvents) OnMessage(_ *gws.Conn, m *gws.Message) {
	line := m.Data.String()
	_ = m.Close()
	if line == "joined" {
		close(e.joined)
		return
	}
	select {
	case e.replies <- line:
	default: // nobody asked: dropped, and the request times out
	}
}

func (e *bunEvents) OnClose(*gws.Conn, error) { close(e.ended) }

// bunServer is the script bunHub runs, relative to the package directory.
const bunServer = "internal/bunpeer/server.js"

// bunBinary returns the Bun that internal/bunpeer's npm ci installed, or
// else the bun on PATH.
func bunBinary() (string, error) {
	const local = "internal/bunpeer/node_modules/.bin/bun"
	if _, err := os.Stat(local); err == nil {
		return local, nil
	}
	path, err := exec.LookPath("bun")
	if err != nil {
		return "", errors.New("bun is not installed: run `npm ci` in internal/bunpeer (or put bun on PATH)")
	}
	return path, nil
}

// requireBun skips tb when Bun is not installed, and fails it under
// WSROOM_CI, where .ci/run installs it.
func requireBun(tb testing.TB) {
	tb.Helper()
	if _, err := bunBinary(); err != nil {
		if os.Getenv("WSROOM_CI") != "" {
			tb.Fatal(err)
		}
		tb.Skip(err)
	}
}

func newBunHub(cfg hubConfig) (hub, error) {
	bin, err := bunBinary()
	if err != nil {
		return nil, err
	}
	announce := "0"
	if cfg.announce {
		announce = "1"
	}
	h := &bunHub{
		cmd:    exec.Command(bin, bunServer),
		read:   make(chan struct{}),
		events: &bunEvents{joined: make(chan struct{}), replies: make(chan string, 4), ended: make(chan struct{})},
	}
	h.cmd.Env = append(os.Environ(), "WSROOM_BUN_CONNS="+strconv.Itoa(cfg.conns), "WSROOM_BUN_ANNOUNCE="+announce)
	h.cmd.Stderr = os.Stderr
	h.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if h.stdin, err = h.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := h.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := h.cmd.Start(); err != nil {
		return nil, fmt.Errorf("bun: %w", err)
	}
	port := make(chan string, 1)
	go h.readStdout(stdout, port)
	t := time.NewTimer(setupTimeout)
	defer t.Stop()
	select {
	case p := <-port:
		h.url = "ws://127.0.0.1:" + p + "/ws"
	case <-h.read:
		return nil, fmt.Errorf("bun: exited before listening (%v)", h.cmd.Wait())
	case <-t.C:
		h.kill()
		return nil, fmt.Errorf("bun: not listening within %v", setupTimeout)
	}
	h.ctl, _, err = gws.NewClient(h.events, &gws.ClientOption{Addr: strings.TrimSuffix(h.url, "/ws") + "/ctl"})
	if err != nil {
		h.kill()
		return nil, fmt.Errorf("bun: control connection: %w", err)
	}
	go h.ctl.ReadLoop()
	return h, nil
}

// kill ends a server that failed to start.
func (h *bunHub) kill() {
	_ = h.cmd.Process.Kill()
	<-h.read
	_ = h.cmd.Wait()
}

// readStdout passes the port the server prints on, then copies the rest to
// stderr, until the server exits.
func (h *bunHub) readStdout(stdout io.Reader, port chan<- string) {
	defer close(h.read)
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if p, ok := strings.CutPrefix(sc.Text(), "listening "); ok {
			port <- p
			continue
		}
		fmt.Fprintln(os.Stderr, "bun:", sc.Text())
	}
}

// request sends a control command and returns the reply that starts with
// want.
func (h *bunHub) request(cmd, want string) (string, error) {
	h.ctlMu.Lock()
	defer h.ctlMu.Unlock()
	if err := h.ctl.WriteString(cmd); err != nil {
		return "", fmt.Errorf("bun: %s: %w", cmd, err)
	}
	t := time.NewTimer(setupTimeout)
	defer t.Stop()
	select {
	case line := <-h.events.replies:
		if !strings.HasPrefix(line, want) {
			return "", fmt.Errorf("bun: %s: got %q, want %s", cmd, line, want)
		}
		return line, nil
	case <-h.events.ended:
		return "", fmt.Errorf("bun: %s: control connection closed", cmd)
	case <-t.C:
		return "", fmt.Errorf("bun: %s: no reply within %v", cmd, setupTimeout)
	}
}

// stats returns the server's count of members connected, of members lost
// and of messages refused.
func (h *bunHub) stats() (members, lost, refused int, err error) {
	line, err := h.request("stats", "stats ")
	if err != nil {
		return 0, 0, 0, err
	}
	if _, err := fmt.Sscanf(line, "stats %d %d %d", &members, &lost, &refused); err != nil {
		return 0, 0, 0, fmt.Errorf("bun: %q: %w", line, err)
	}
	return members, lost, refused, nil
}

func (h *bunHub) URL() string             { return h.url }
func (h *bunHub) Joined() <-chan struct{} { return h.events.joined }

func (h *bunHub) Members() int {
	n, _, _, err := h.stats()
	if err != nil {
		return -1
	}
	return n
}

func (h *bunHub) Publish(m *e2eMsg) error {
	return h.ctl.WriteString("p " + m.Room + " " + strconv.FormatInt(m.Seq, 10) + " " + strconv.FormatInt(m.Sent, 10))
}

func (h *bunHub) Problems() error {
	_, lost, refused, err := h.stats()
	if err != nil {
		return err
	}
	if lost != 0 || refused != 0 {
		return fmt.Errorf("bun: %d connections lost, %d messages refused", lost, refused)
	}
	return nil
}

func (h *bunHub) CPU() (time.Duration, error) { return pidCPU(h.cmd.Process.Pid) }
func (h *bunHub) RSS() (uint64, error) {
	return statmRSS("/proc/" + strconv.Itoa(h.cmd.Process.Pid) + "/statm")
}

// Settle has the server run a full garbage collection (Bun.gc(true)).
func (h *bunHub) Settle() error {
	_, err := h.request("gc", "gc-ok")
	return err
}

// Close ends the server by closing its standard input, and kills it if it
// has not exited when ctx ends.
func (h *bunHub) Close(ctx context.Context) error {
	_ = h.ctl.NetConn().Close()
	<-h.events.ended
	_ = h.stdin.Close()
	var err error
	select {
	case <-h.read:
	case <-ctx.Done():
		_ = h.cmd.Process.Kill()
		<-h.read
		err = fmt.Errorf("bun: did not exit in time; killed: %w", ctx.Err())
	}
	if werr := h.cmd.Wait(); err == nil && werr != nil {
		err = fmt.Errorf("bun: %w", werr)
	}
	return err
}
