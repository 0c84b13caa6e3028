// Package loadgen is the client side of wsroom's end-to-end benchmarks: a
// process of its own that holds many real WebSocket client connections
// (gws clients, one read goroutine each), so that the benchmark process,
// the server, pays for none of the clients' work and its CPU time and
// memory are the server's alone.
//
// The client process is the test binary itself, started again by Start
// with its configuration in the environment; TestMain calls Main first,
// which runs the client process and exits when the environment says so.
// The two processes talk over the child's stdin and stdout, one line per
// command or report:
//
//	benchmark → clients            clients → benchmark
//	dial                           hello            (started)
//	reset                          ready <n>        (n connections open)
//	report                         reset-ok         (latencies cleared)
//	(stdin closed: exit)           d <seq>          (message seq reached every connection)
//	                               h <bucket> <count>, then report <cpu-ns>
//	                               err <text>       (a missing, out-of-order or unreadable
//	                                                 message, a lost connection, a failed dial)
//
// Messages published to the clients are JSON objects carrying "seq", the
// publisher's sequence number (0, 1, 2, ... in publishing order, from the
// first message after dial) and "sent", the publish time in Unix
// nanoseconds; both processes read the same clock.
package loadgen

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lxzan/gws"
)

const (
	envURL   = "WSROOM_LOADGEN_URL"
	envConns = "WSROOM_LOADGEN_CONNS"

	// Ring is how many messages the client process tracks at once: a
	// publisher must keep fewer than Ring messages outstanding.
	Ring = 1 << 12

	dialWorkers = 8
	maxErrors   = 10 // error lines sent before the client process goes quiet

	// lifetime bounds the client process whatever happens to the
	// benchmark; it also exits as soon as its stdin closes.
	lifetime = 15 * time.Minute
)

// Main runs the client process and exits, if this process was started as
// one by Start; otherwise it returns at once. Call it first in TestMain.
func Main() {
	url := os.Getenv(envURL)
	if url == "" {
		return
	}
	n, err := strconv.Atoi(os.Getenv(envConns))
	if err != nil || n <= 0 {
		fmt.Fprintf(os.Stderr, "loadgen: bad %s=%q\n", envConns, os.Getenv(envConns))
		os.Exit(2)
	}
	time.AfterFunc(lifetime, func() {
		fmt.Fprintln(os.Stderr, "loadgen: lifetime exceeded, exiting")
		os.Exit(3)
	})
	c := &clients{url: url, n: n}
	c.serve(os.Stdin)
	os.Exit(0)
}

// clients is the state of the client process.
type clients struct {
	url string
	n   int

	outMu sync.Mutex
	out   []byte // line buffer, under outMu

	conns   []*gws.Conn
	hist    Histogram
	pending [Ring]atomic.Int32 // receipts per message, by seq % Ring
	closing atomic.Bool
	errs    atomic.Int32
}

// serve runs the command loop until stdin closes.
func (c *clients) serve(stdin io.Reader) {
	c.say("hello")
	var cpu0 time.Duration
	sc := bufio.NewScanner(stdin)
	for sc.Scan() {
		switch sc.Text() {
		case "dial":
			if err := c.dial(); err != nil {
				c.fail("dial: %v", err)
				continue
			}
			c.say("ready " + strconv.Itoa(c.n))
		case "reset":
			c.hist.Reset()
			cpu0 = CPUTime()
			c.say("reset-ok")
		case "report":
			cpu := CPUTime() - cpu0
			for i := range c.hist.buckets {
				if v := c.hist.buckets[i].Load(); v != 0 {
					c.say("h " + strconv.Itoa(i) + " " + strconv.FormatInt(v, 10))
				}
			}
			c.say("report " + strconv.FormatInt(int64(cpu), 10))
		}
	}
	// stdin closed: the benchmark is done with us, or gone. Exiting closes
	// every socket.
	c.closing.Store(true)
}

// dial opens the n connections, a few at a time.
func (c *clients) dial() error {
	if c.conns != nil {
		return errors.New("dialled twice")
	}
	c.conns = make([]*gws.Conn, c.n)
	var next atomic.Int64
	var wg sync.WaitGroup
	var first atomic.Pointer[error]
	wg.Add(dialWorkers)
	for range dialWorkers {
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= c.n || first.Load() != nil {
					return
				}
				s, _, err := gws.NewClient(&conn{c: c, id: i}, &gws.ClientOption{
					Addr:             c.url,
					HandshakeTimeout: 10 * time.Second,
				})
				if err != nil {
					err = fmt.Errorf("connection %d: %w", i, err)
					first.CompareAndSwap(nil, &err)
					return
				}
				c.conns[i] = s
				go s.ReadLoop()
			}
		}()
	}
	wg.Wait()
	if p := first.Load(); p != nil {
		return *p
	}
	return nil
}

// say writes one line to the benchmark.
func (c *clients) say(line string) {
	c.outMu.Lock()
	c.out = append(append(c.out[:0], line...), '\n')
	_, _ = os.Stdout.Write(c.out)
	c.outMu.Unlock()
}

// delivered tells the benchmark that message seq reached every connection.
func (c *clients) delivered(seq int64) {
	c.outMu.Lock()
	c.out = append(strconv.AppendInt(append(c.out[:0], 'd', ' '), seq, 10), '\n')
	_, _ = os.Stdout.Write(c.out)
	c.outMu.Unlock()
}

func (c *clients) fail(format string, args ...any) {
	if c.errs.Add(1) <= maxErrors {
		c.say("err " + strings.ReplaceAll(fmt.Sprintf(format, args...), "\n", " "))
	}
}

// conn is one client connection's event handler.
type conn struct {
	gws.BuiltinEventHandler
	c    *clients
	id   int
	next int64 // seq of the next message expected
}

var (
	seqKey  = []byte(`"seq":`)
	sentKey = []byte(`"sent":`)
)

func (h *conn) OnMessage(_ *gws.Conn, m *gws.Message) {
	now := time.Now().UnixNano()
	p := m.Bytes()
	seq, ok1 := intField(p, seqKey)
	sent, ok2 := intField(p, sentKey)
	if !ok1 || !ok2 {
		h.c.fail("connection %d: message without seq and sent: %.200q", h.id, p)
		_ = m.Close()
		return
	}
	_ = m.Close()
	if seq != h.next {
		h.c.fail("connection %d: got message %d, want %d: a delivery is missing or out of order", h.id, seq, h.next)
		h.next = seq + 1
		return
	}
	h.next++
	h.c.hist.Record(now - sent)
	slot := &h.c.pending[seq%Ring]
	if slot.Add(1) == int32(h.c.n) {
		slot.Store(0)
		h.c.delivered(seq)
	}
}

func (h *conn) OnClose(_ *gws.Conn, err error) {
	if !h.c.closing.Load() {
		h.c.fail("connection %d closed: %v", h.id, err)
	}
}

// intField reads the integer after key in a JSON object written by
// encoding/json (no spaces).
func intField(p, key []byte) (int64, bool) {
	i := bytes.Index(p, key)
	if i < 0 {
		return 0, false
	}
	p = p[i+len(key):]
	var v int64
	n := 0
	for n < len(p) && p[n] >= '0' && p[n] <= '9' {
		v = v*10 + int64(p[n]-'0')
		n++
	}
	return v, n > 0
}

// Histogram counts durations in nanoseconds in log-linear buckets: exact
// below 128 ns, then 64 buckets per power of two (within 1.6%). It is safe
// for concurrent use.
type Histogram struct {
	buckets [nBuckets]atomic.Int64
}

const (
	subBits  = 6
	sub      = 1 << subBits // buckets per power of two
	nBuckets = sub * (64 - subBits)
)

func bucketOf(v int64) int {
	if v < 2*sub {
		return int(max(v, 0))
	}
	shift := bits.Len64(uint64(v)) - subBits - 1
	return sub*shift + int(v>>shift)
}

// bucketRange returns the smallest value of bucket i and its width.
func bucketRange(i int) (lo, width int64) {
	if i < 2*sub {
		return int64(i), 1
	}
	shift := i/sub - 1
	return int64(i-sub*shift) << shift, 1 << shift
}

// Record counts one duration, in nanoseconds.
func (h *Histogram) Record(ns int64) { h.buckets[bucketOf(ns)].Add(1) }

// Reset clears every count.
func (h *Histogram) Reset() {
	for i := range h.buckets {
		h.buckets[i].Store(0)
	}
}

// Count returns the number of durations recorded.
func (h *Histogram) Count() int64 {
	var n int64
	for i := range h.buckets {
		n += h.buckets[i].Load()
	}
	return n
}

// Quantile returns the q-quantile (0 < q ≤ 1) of the recorded durations,
// as the middle of its bucket; 0 if none were recorded.
func (h *Histogram) Quantile(q float64) time.Duration {
	total := h.Count()
	if total == 0 {
		return 0
	}
	rank := int64(q * float64(total))
	if float64(rank) < q*float64(total) {
		rank++
	}
	rank = max(rank, 1)
	var seen int64
	for i := range h.buckets {
		if seen += h.buckets[i].Load(); seen >= rank {
			lo, w := bucketRange(i)
			return time.Duration(lo + (w-1)/2)
		}
	}
	return 0 // not reached
}

// Process is a client process, seen from the benchmark.
type Process struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	done    chan int64
	errs    chan error
	lines   chan string
	quit    chan struct{} // closed by Close: the reader drops what nobody reads
	exited  chan struct{}
	waitErr error
}

// Start starts a client process that will hold n connections to url
// (ws://host:port/path) once told to Dial. The test binary must call Main
// from TestMain.
func Start(url string, n int) (*Process, error) {
	// The flags keep a test binary without Main in TestMain from running
	// its tests here; it would then never say hello.
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
	cmd.Env = append(os.Environ(), envURL+"="+url, envConns+"="+strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = sysProcAttr()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Process{
		cmd:    cmd,
		stdin:  stdin,
		done:   make(chan int64, Ring),
		errs:   make(chan error, maxErrors),
		lines:  make(chan string, nBuckets+16),
		quit:   make(chan struct{}),
		exited: make(chan struct{}),
	}
	go p.read(stdout)
	if _, err := p.await("hello", 30*time.Second); err != nil {
		_ = p.Close(5 * time.Second)
		return nil, fmt.Errorf("client process did not start (is loadgen.Main called from TestMain?): %w", err)
	}
	return p, nil
}

func (p *Process) read(stdout io.Reader) {
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "d "):
			seq, err := strconv.ParseInt(line[2:], 10, 64)
			if err != nil {
				p.report(fmt.Errorf("bad line %q", line))
				continue
			}
			select {
			case p.done <- seq:
			case <-p.quit:
			}
		case strings.HasPrefix(line, "err "):
			p.report(errors.New(line[4:]))
		default:
			select {
			case p.lines <- line:
			case <-p.quit:
			}
		}
	}
	p.waitErr = p.cmd.Wait()
	close(p.exited)
}

func (p *Process) report(err error) {
	select {
	case p.errs <- err:
	default:
	}
}

// Done yields the seq of each message that reached every connection.
func (p *Process) Done() <-chan int64 { return p.done }

// Errs yields the errors the client process reports: missing or
// out-of-order messages, lost connections.
func (p *Process) Errs() <-chan error { return p.errs }

// Exited is closed when the client process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// ExitErr describes how the process ended, once Exited is closed.
func (p *Process) ExitErr() error { return p.waitErr }

// await waits for a line starting with prefix.
func (p *Process) await(prefix string, timeout time.Duration) (string, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case line := <-p.lines:
		if strings.HasPrefix(line, prefix) {
			return line, nil
		}
		return "", fmt.Errorf("client process said %q, want %s", line, prefix)
	case err := <-p.errs:
		return "", fmt.Errorf("client process: %w", err)
	case <-p.exited:
		return "", fmt.Errorf("client process exited (%v)", p.waitErr)
	case <-t.C:
		return "", fmt.Errorf("client process: no %q within %v", prefix, timeout)
	}
}

func (p *Process) command(cmd, reply string, timeout time.Duration) (string, error) {
	if _, err := io.WriteString(p.stdin, cmd+"\n"); err != nil {
		return "", fmt.Errorf("client process: %s: %w", cmd, err)
	}
	return p.await(reply, timeout)
}

// Dial opens the process's connections and waits until all are open.
func (p *Process) Dial(timeout time.Duration) error {
	_, err := p.command("dial", "ready", timeout)
	return err
}

// Reset clears the latencies recorded so far and starts the client CPU
// clock. No message may be in flight.
func (p *Process) Reset(timeout time.Duration) error {
	_, err := p.command("reset", "reset-ok", timeout)
	return err
}

// Report is what the client process recorded since the last Reset.
type Report struct {
	Latency Histogram     // publish-to-receive latency of every delivery
	CPU     time.Duration // CPU time (user+sys) of the client process
}

// Report returns the latencies and CPU time recorded since the last Reset.
func (p *Process) Report(timeout time.Duration) (*Report, error) {
	if _, err := io.WriteString(p.stdin, "report\n"); err != nil {
		return nil, fmt.Errorf("client process: report: %w", err)
	}
	r := new(Report)
	for {
		line, err := p.await("", timeout)
		if err != nil {
			return nil, err
		}
		f := strings.Fields(line)
		switch {
		case len(f) == 3 && f[0] == "h":
			i, err1 := strconv.Atoi(f[1])
			n, err2 := strconv.ParseInt(f[2], 10, 64)
			if err1 != nil || err2 != nil || i < 0 || i >= nBuckets {
				return nil, fmt.Errorf("client process: bad line %q", line)
			}
			r.Latency.buckets[i].Add(n)
		case len(f) == 2 && f[0] == "report":
			ns, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("client process: bad line %q", line)
			}
			r.CPU = time.Duration(ns)
			return r, nil
		default:
			return nil, fmt.Errorf("client process: unexpected line %q", line)
		}
	}
}

// Close ends the client process, which closes its connections by exiting,
// and waits for it to exit; it kills it if it has not within timeout.
func (p *Process) Close(timeout time.Duration) error {
	select {
	case <-p.quit:
		return errors.New("client process closed twice")
	default:
	}
	close(p.quit)
	_ = p.stdin.Close()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.exited:
		return nil
	case <-t.C:
		_ = p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("client process did not exit within %v; killed", timeout)
	}
}
