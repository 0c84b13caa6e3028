package wsroom_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/wstest"
)

// The cross-origin check (origin.go), before the upgrade.

func TestCrossOriginUpgradeIsRefusedWith403(t *testing.T) {
	wstest.CheckGoroutines(t)
	_, srv := serve(t, echo, wsroom.WithOriginPatterns("*.friendly.example"))
	host := strings.TrimPrefix(srv.URL, "http://")
	cases := []struct {
		origin string
		status int
	}{
		{"", http.StatusSwitchingProtocols},
		{"http://" + host, http.StatusSwitchingProtocols},
		{"https://app.friendly.example", http.StatusSwitchingProtocols},
		{"https://evil.example", http.StatusForbidden},
		{"https://friendly.example.evil.example", http.StatusForbidden},
		{"null", http.StatusForbidden},
	}
	for _, tc := range cases {
		h := http.Header{}
		if tc.origin != "" {
			h.Set("Origin", tc.origin)
		}
		c, status, _ := wstest.TryDial(srv.URL+"/ws/lobby", wstest.Options{Header: h})
		if status != tc.status {
			t.Errorf("Origin %q: status %d, want %d", tc.origin, status, tc.status)
		}
		if c != nil {
			c.Close()
		}
	}
}
