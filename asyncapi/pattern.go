package asyncapi

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
)

// paramName is what AsyncAPI allows as a parameter's name.
var paramName = regexp.MustCompile(`^[A-Za-z0-9_\-]+$`)

// address turns a net/http mux pattern ("[METHOD ][HOST]/[PATH]") into a
// channel address and its parameters, in order: "GET /chat/{room}" is
// "/chat/{room}" with parameter room; "{rest...}" is a parameter too, and
// "{$}" matches only the end of the path, so it is left out.
func address(pattern string) (addr string, params []string, err error) {
	if err := validPattern(pattern); err != nil {
		return "", nil, err
	}
	rest := pattern
	if method, path, ok := strings.Cut(pattern, " "); ok {
		if method != http.MethodGet {
			return "", nil, fmt.Errorf("asyncapi: pattern %q: a WebSocket upgrade is a GET, not %s", pattern, method)
		}
		rest = strings.TrimLeft(path, " \t")
	}
	slash := strings.Index(rest, "/")
	if slash < 0 {
		return "", nil, fmt.Errorf("asyncapi: pattern %q has no path", pattern)
	}
	segs := strings.Split(rest[slash:], "/")
	for i, seg := range segs {
		if !strings.HasPrefix(seg, "{") {
			continue
		}
		name := strings.TrimSuffix(strings.Trim(seg, "{}"), "...")
		if name == "$" {
			segs[i] = ""
			continue
		}
		if !paramName.MatchString(name) {
			return "", nil, fmt.Errorf("asyncapi: pattern %q: wildcard %q is not a name AsyncAPI allows (letters, digits, _ and -)", pattern, name)
		}
		segs[i] = "{" + name + "}"
		params = append(params, name)
	}
	return strings.Join(segs, "/"), params, nil
}

// validPattern reports a pattern net/http's mux would refuse, so that the
// document describes only what can be mounted.
func validPattern(pattern string) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("asyncapi: %v", p)
		}
	}()
	http.NewServeMux().Handle(pattern, http.NotFoundHandler())
	return nil
}
