package loadgen

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

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

// Start starts a client process that will hold cfg's connections once
// told to Dial. The test binary must call Main from TestMain.
func Start(cfg Config) (*Process, error) {
	if cfg.Rooms == 0 {
		cfg.Rooms = 1
	}
	if cfg.Conns <= 0 || cfg.Rooms < 0 || cfg.Conns%cfg.Rooms != 0 {
		return nil, fmt.Errorf("loadgen: %d connections cannot be split between %d rooms", cfg.Conns, cfg.Rooms)
	}
	// The flags keep a test binary without Main in TestMain from running
	// its tests here; it would then never say hello.
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
	cmd.Env = append(os.Environ(), cfg.env()...)
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

// Dial opens the process's connections and waits until all are open and,
// with Config.Announce, until every join has been announced.
func (p *Process) Dial(timeout time.Duration) error {
	_, err := p.command("dial", "ready", timeout)
	return err
}

// Chat has every connection send count messages to its room, window of
// them unanswered at a time, and waits until every member of every room
// has received every one. No other message may be in flight.
func (p *Process) Chat(count, window int, timeout time.Duration) error {
	_, err := p.command("chat "+strconv.Itoa(count)+" "+strconv.Itoa(window), "chatted", timeout)
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
