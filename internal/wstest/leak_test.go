package wstest

import (
	"strings"
	"testing"
	"time"
)

// runner is a stand-in for *testing.M whose Run does what the test says.
type runner func() int

func (r runner) Run() int { return r() }

// leakUntil blocks until release is closed: the goroutine Main must find.
func leakUntil(release chan struct{}) { <-release }

func TestMainFailsAndPrintsTheStackOfAGoroutineTheTestsLeft(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	var out strings.Builder
	code := runMain(runner(func() int {
		go leakUntil(release)
		return 0
	}), &out, 100*time.Millisecond)
	if code != 1 {
		t.Fatalf("Main returned %d with a goroutine left running, want 1", code)
	}
	if !strings.Contains(out.String(), "after they ended: 1\n") || !strings.Contains(out.String(), "wstest.leakUntil") {
		t.Fatalf("Main's report does not name the leaked goroutine:\n%s", out.String())
	}
}

func TestMainWaitsForGoroutinesThatAreEnding(t *testing.T) {
	var out strings.Builder
	code := runMain(runner(func() int {
		go time.Sleep(50 * time.Millisecond)
		return 0
	}), &out, Timeout)
	if code != 0 || out.Len() != 0 {
		t.Fatalf("Main returned %d, reporting %q, for a goroutine that ended within the deadline; want 0", code, out.String())
	}
}

func TestMainIgnoresGoroutinesAliveBeforeTheTests(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	go leakUntil(release)
	var out strings.Builder
	if code := runMain(runner(func() int { return 0 }), &out, 100*time.Millisecond); code != 0 {
		t.Fatalf("Main returned %d for a goroutine started before it: %s", code, out.String())
	}
}

func TestMainPassesAFailureThroughUnchecked(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	var out strings.Builder
	code := runMain(runner(func() int {
		go leakUntil(release)
		return 3
	}), &out, 100*time.Millisecond)
	if code != 3 || out.Len() != 0 {
		t.Fatalf("Main returned %d, reporting %q, after the tests failed; want their code 3 and no leak report", code, out.String())
	}
}
