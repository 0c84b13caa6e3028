package client_test

import (
	"strings"
	"testing"

	"github.com/wsroom/wsroom/internal/tcpproxy"
)

// proxy is a loopback TCP proxy in front of a test server, whose
// connections a test cuts, refuses or freezes.
type proxy struct{ *tcpproxy.Proxy }

// newProxy forwards a loopback port to target (an http:// URL's host),
// until the test ends.
func newProxy(t testing.TB, targetURL string) *proxy {
	t.Helper()
	return &proxy{tcpproxy.New(t, strings.TrimPrefix(targetURL, "http://"))}
}

// URL is the proxy's ws:// URL of path.
func (p *proxy) URL(path string) string { return "ws://" + p.Addr() + path }
