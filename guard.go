package wsroom

import (
	"context"
	"errors"
	"net/http"
	"strings"
)

// A Guard decides, before the upgrade, whether r may open a connection. It
// returns the request the handler will see, typically r.WithContext(ctx)
// with the authenticated principal in ctx, or an error: ErrForbidden (or an
// error wrapping it) refuses the upgrade with 403 Forbidden, any other error
// with 401 Unauthorized. The error is not shown to the client.
type Guard func(r *http.Request) (*http.Request, error)

// RequireToken returns a Guard that reads a token from the Authorization
// header ("Bearer <token>") or, when that is absent, from the token query
// parameter (browsers cannot set headers on a WebSocket), and passes it to
// verify. verify returns the context the connection will carry, usually ctx
// with the principal added, or an error that refuses the upgrade as Guard
// describes. A request without a token is refused with 401 and verify is not
// called. The token query parameter is removed from the request the handler
// sees (URL and RequestURI), so it does not travel further into logs.
func RequireToken(verify func(ctx context.Context, token string) (context.Context, error)) Guard {
	return func(r *http.Request) (*http.Request, error) {
		token, fromQuery := bearerToken(r)
		if token == "" {
			return nil, ErrUnauthorized
		}
		ctx, err := verify(r.Context(), token)
		if err != nil {
			return nil, err
		}
		r = r.WithContext(ctx)
		if fromQuery {
			u := *r.URL
			q := u.Query()
			q.Del("token")
			u.RawQuery = q.Encode()
			r.URL = &u
			r.RequestURI = u.RequestURI()
		}
		return r, nil
	}
}

// bearerToken returns the request's token and whether it came from the query.
func bearerToken(r *http.Request) (token string, fromQuery bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, t, ok := strings.Cut(h, " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(t), false
		}
		return "", false
	}
	return r.URL.Query().Get("token"), true
}

// refuse answers a request the guard turned down.
func refuse(w http.ResponseWriter, err error) {
	if errors.Is(err, ErrForbidden) {
		http.Error(w, http.StatusText(http.StatusForbidden), http.StatusForbidden)
		return
	}
	w.Header().Set("WWW-Authenticate", "Bearer")
	http.Error(w, http.StatusText(http.StatusUnauthorized), http.StatusUnauthorized)
}
