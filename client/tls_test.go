package client_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/client"
	"github.com/wsroom/wsroom/internal/wstest"
)

// A wss:// URL is dialled over TLS with the configuration given; a
// certificate the client cannot verify refuses the dial.
func TestTLS(t *testing.T) {
	wstest.CheckGoroutines(t)
	s := &server{rooms: wsroom.NewRooms[Out](wsroom.WithHistory(10, time.Minute))}
	s.ep = wsroom.New(s.handle)
	mux := http.NewServeMux()
	mux.Handle("GET /room/{room}", s.ep)
	hs := httptest.NewUnstartedServer(mux)
	hs.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is the test's
	hs.StartTLS()
	t.Cleanup(func() {
		_ = s.ep.Shutdown(context.Background())
		hs.Close()
	})
	url := "wss" + strings.TrimPrefix(hs.URL, "https") + "/room/tls"

	var cv *tls.CertificateVerificationError
	if _, err := client.Dial[In, Out](deadline(t), url); !errors.As(err, &cv) {
		t.Fatalf("Dial without the test certificate: %v, want a verification error", err)
	}
	cfg := hs.Client().Transport.(*http.Transport).TLSClientConfig
	c := dial(t, deadline(t), url, client.WithTLSConfig(cfg))
	if m := messages(t, c)(); m.Type != "joined" {
		t.Fatalf("over TLS: %+v", m)
	}
}
