package wsroom

import (
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strings"
)

// checkOrigin protects browsers from cross-site WebSocket hijacking: a page
// on another site may not open a connection that carries this site's
// cookies. Requests without an Origin header (non-browser clients) and
// same-host origins pass; others must match a pattern.
func checkOrigin(r *http.Request, patterns []string) error {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil
	}
	u, err := url.Parse(origin)
	if err != nil {
		return fmt.Errorf("wsroom: malformed Origin header %q", origin)
	}
	if strings.EqualFold(u.Host, r.Host) {
		return nil
	}
	host := strings.ToLower(u.Host)
	for _, p := range patterns {
		if ok, _ := path.Match(p, host); ok { // p is lower case already
			return nil
		}
	}
	return fmt.Errorf("wsroom: origin %q is not allowed", origin)
}

// validatePatterns reports the first malformed origin pattern.
func validatePatterns(patterns []string) error {
	for _, p := range patterns {
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("wsroom: bad origin pattern %q: %w", p, err)
		}
	}
	return nil
}
