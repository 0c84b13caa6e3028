package client_test

import (
	"os"
	"testing"

	"github.com/wsroom/wsroom/internal/wstest"
)

// TestMain fails the run if any goroutine the tests started, a Conn's
// among them, is still alive once they have ended.
func TestMain(m *testing.M) { os.Exit(wstest.Main(m)) }
