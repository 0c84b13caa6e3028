package wstest

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// CheckGoroutines fails the test if, once its other cleanups have run,
// goroutines started during the test are still alive after Timeout. Call it
// first in a test, so its cleanup runs last.
func CheckGoroutines(t testing.TB) {
	t.Helper()
	base := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(Timeout)
		for runtime.NumGoroutine() > base {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				t.Errorf("goroutines leaked: %d now, %d before the test\n%s",
					runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
				return
			}
			runtime.Gosched()
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// Main runs a package's tests and then checks the whole binary for leaks:
// if the tests passed, every goroutine started since Main was called must
// end within Timeout, or Main prints their stacks and returns 1. It returns
// m.Run's code otherwise. Call it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(wstest.Main(m)) }
//
// CheckGoroutines catches a leak in the test that caused it; Main catches
// what no test checks (helpers, examples, benchmarks, tests that cannot
// count because they run beside others). Under -fuzz the fuzzing engine
// keeps goroutines of its own, so Main checks nothing then.
func Main(m interface{ Run() int }) int {
	return runMain(m, os.Stderr, Timeout)
}

func runMain(m interface{ Run() int }, w io.Writer, wait time.Duration) int {
	before := goroutines()
	code := m.Run()
	if code != 0 || fuzzing() {
		return code
	}
	if err := noLeaks(before, wait); err != nil {
		fmt.Fprintln(w, err)
		return 1
	}
	return 0
}

// noLeaks waits up to wait for every goroutine not in before, other than
// the caller, to end; the error names those that did not, with stacks.
func noLeaks(before map[uint64]string, wait time.Duration) error {
	self := currentID()
	deadline := time.Now().Add(wait)
	for {
		var left []string
		for id, stack := range goroutines() {
			if _, old := before[id]; !old && id != self {
				left = append(left, stack)
			}
		}
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("wstest: goroutines the tests started still alive %v after they ended: %d\n\n%s",
				wait, len(left), strings.Join(left, "\n\n"))
		}
		runtime.Gosched()
		time.Sleep(10 * time.Millisecond)
	}
}

// goroutines returns the stack of every goroutine, by id.
func goroutines() map[uint64]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	all := map[uint64]string{}
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		if id, ok := goroutineID(g); ok {
			all[id] = string(g)
		}
	}
	return all
}

// currentID returns the calling goroutine's id.
func currentID() uint64 {
	buf := make([]byte, 64)
	id, _ := goroutineID(buf[:runtime.Stack(buf, false)])
	return id
}

// goroutineID reads the id from a stack's first line, "goroutine 7 [...]:".
func goroutineID(stack []byte) (uint64, bool) {
	rest, ok := bytes.CutPrefix(stack, []byte("goroutine "))
	if !ok {
		return 0, false
	}
	digits, _, _ := bytes.Cut(rest, []byte(" "))
	id, err := strconv.ParseUint(string(digits), 10, 64)
	return id, err == nil
}

// fuzzing reports whether the test binary runs as a fuzzing coordinator
// or worker.
func fuzzing() bool {
	for _, name := range []string{"test.fuzz", "test.fuzzworker"} {
		if fl := flag.Lookup(name); fl != nil && fl.Value.String() != "" && fl.Value.String() != "false" {
			return true
		}
	}
	return false
}

// ReserveGoroutines makes sure that k goroutine descriptors exist for
// reuse, so that none is allocated, and never freed, while a test or
// benchmark measures memory.
func ReserveGoroutines(k int) {
	var started, ended sync.WaitGroup
	release := make(chan struct{})
	started.Add(k)
	ended.Add(k)
	for range k {
		go func() {
			started.Done()
			<-release
			ended.Done()
		}()
	}
	started.Wait()
	close(release)
	ended.Wait()
}
