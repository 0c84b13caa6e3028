//go:build unix

package main

// The page in a real browser: the chat binary serves it, and
// browsertest/page.mjs drives Debian's Chromium through playwright-core,
// one scenario per subtest. The script prints what it checked; a failing
// subtest shows that output. Without node, Chromium or the script's
// node_modules the test skips, and under WSROOM_CI it fails instead.

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wsroom/wsroom/internal/tcpproxy"
)

// pageBudget bounds the whole browser test, every scenario included.
const pageBudget = 90 * time.Second

func TestPageInARealBrowser(t *testing.T) {
	script := pageScript(t)
	bin := chatBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), pageBudget)
	defer cancel()

	t.Run("TwoMembersChatAndOnlyOthersSeeTyping", func(t *testing.T) {
		runPage(ctx, t, script, "chat", startBinary(t, bin), nil)
	})
	t.Run("TheListOfWhoIsHereFollowsTabsAndLeaves", func(t *testing.T) {
		runPage(ctx, t, script, "presence", startBinary(t, bin), nil)
	})
	t.Run("TokenIsAskedForAndKeptOutOfTheAddressBar", func(t *testing.T) {
		runPage(ctx, t, script, "token", startBinary(t, bin, "-token", "secret"), nil)
	})
	t.Run("ServerRestartIsSaidAndTheRoomRejoined", func(t *testing.T) {
		p := startBinary(t, bin)
		addr := strings.TrimPrefix(p.base, "http://")
		runPage(ctx, t, script, "restart", p, func(req string) {
			switch req {
			case "stop": // every socket closes with 1001, as on a real restart
				if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
					t.Fatal(err)
				}
				select {
				case <-p.done:
				case <-ctx.Done():
					t.Fatal("chat still running at the deadline after SIGTERM")
				}
			case "start":
				p = startBinary(t, bin, "-addr", addr) // the last -addr wins
			default:
				t.Fatalf("the script asked for %q", req)
			}
		})
	})
	t.Run("ErrorFrameIsShownAsANotice", func(t *testing.T) {
		runPage(ctx, t, script, "notice", startBinary(t, bin), nil)
	})
	t.Run("CutConnectionResumesAndSaysWhatItRecovered", func(t *testing.T) {
		p := startBinary(t, bin)
		proxy := tcpproxy.New(t, strings.TrimPrefix(p.base, "http://"))
		runPage(ctx, t, script, "recover", p, func(req string) {
			switch req {
			case "cut":
				proxy.Down()
			case "heal":
				proxy.Up()
			default:
				t.Fatalf("the script asked for %q", req)
			}
		}, "http://"+proxy.Addr())
	})
}

// runPage runs the script's scenario against p until it exits or ctx ends;
// args are further arguments of the script. A line "@REQUEST" from the
// script is handed to serve, and answered "ok" on the script's stdin once
// serve returns.
func runPage(ctx context.Context, t *testing.T, script, scenario string, p *chatProcess, serve func(req string), args ...string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, "node", append([]string{script, scenario, p.base}, args...)...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) } // lets Playwright close Chromium
	cmd.WaitDelay = 5 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	waited := false
	defer func() { // a t.Fatal in serve must not leave the script running
		if !waited {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		line := lines.Text()
		fmt.Fprintln(&out, line)
		if req, ok := strings.CutPrefix(line, "@"); ok && serve != nil {
			serve(req)
			_, _ = io.WriteString(stdin, "ok\n")
		}
	}
	err = cmd.Wait()
	waited = true
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("%w: past the browser test's budget of %v", ctx.Err(), pageBudget)
	}
	if err != nil {
		t.Fatalf("browsertest %s: %v\n%s%s", scenario, err, out.String(), stderr.String())
	}
	t.Logf("browsertest %s passed in %v:\n%s", scenario, time.Since(start).Round(time.Millisecond), out.String())
}

// pageScript returns the path of browsertest/page.mjs once node, Chromium
// (/usr/bin/chromium, or $CHROMIUM) and playwright-core are there.
func pageScript(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("drives a browser against the chat binary")
	}
	chromium := cmp.Or(os.Getenv("CHROMIUM"), "/usr/bin/chromium")
	var missing error
	if _, err := exec.LookPath("node"); err != nil {
		missing = errors.New("node is not installed (apt-get install nodejs npm)")
	} else if _, err := os.Stat(chromium); err != nil {
		missing = fmt.Errorf("no Chromium at %s (apt-get install chromium)", chromium)
	} else if _, err := os.Stat(filepath.Join("browsertest", "node_modules", "playwright-core")); err != nil {
		missing = errors.New("playwright-core is not installed (cd examples/chat/browsertest && npm ci)")
	}
	if missing != nil {
		if os.Getenv("WSROOM_CI") != "" {
			t.Fatalf("cannot run the page in a browser (WSROOM_CI is set, so this fails): %v", missing)
		}
		t.Skipf("cannot run the page in a browser: %v", missing)
	}
	return filepath.Join("browsertest", "page.mjs")
}
