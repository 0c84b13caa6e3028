package wsroom_test

import (
	"os"
	"testing"

	"github.com/wsroom/wsroom/internal/loadgen"
	"github.com/wsroom/wsroom/internal/wstest"
)

// TestMain is the package's one (the internal test files build into the
// same binary). loadgen.Main first: when the end-to-end benchmarks start
// this binary again as their client process, it becomes that process and
// exits. Otherwise the tests run, and wstest.Main then fails the run if
// any goroutine they started is still alive, printing its stack.
func TestMain(m *testing.M) {
	loadgen.Main()
	os.Exit(wstest.Main(m))
}
