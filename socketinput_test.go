package wsroom_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lxzan/gws"
	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/wstest"
)

// These tests cover the read side under gws (socketinput.go): bytes read
// into a buffer borrowed while they are pending, frames cut anywhere by
// the reads, and the connections read through net.Conn instead.

// textFrame returns a masked client text frame carrying a chatIn.
func textFrame(t testing.TB, content string) []byte {
	t.Helper()
	p, err := json.Marshal(chatIn{Type: "message", Content: content})
	if err != nil {
		t.Fatal(err)
	}
	return wstest.Frame(true, 0x1, p)
}

// readEcho reads the echo of a chatIn with content from r.
func readEcho(t testing.TB, r *wstest.Raw, content string) {
	t.Helper()
	_ = r.Conn.SetReadDeadline(time.Now().Add(wstest.Timeout))
	f, err := r.ReadFrame(2 << 20)
	if err != nil {
		t.Fatalf("reading the echo of %.20q: %v", content, err)
	}
	var got chatOut
	if err := json.Unmarshal(f.Payload, &got); err != nil || f.Opcode != 0x1 {
		t.Fatalf("opcode %d, payload %.80q: %v", f.Opcode, f.Payload, err)
	}
	if got.Content != content {
		t.Fatalf("echo of %d bytes, want %d: %.40q", len(got.Content), len(content), got.Content)
	}
}

func TestFramesSentWithTheUpgradeRequestAreRead(t *testing.T) {
	_, srv := serve(t, echo, wsroom.WithLogger(discardLogger()))
	u, _ := url.Parse(srv.URL)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// One write: the HTTP server reads the frames along with the request.
	req := "GET /ws/lobby HTTP/1.1\r\nHost: " + u.Host + "\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: d3Nyb29tLXJhdy1ub25jZQ==\r\n\r\n"
	out := append([]byte(req), textFrame(t, "first")...)
	out = append(out, textFrame(t, "second")...)
	_ = conn.SetDeadline(time.Now().Add(wstest.Timeout))
	if _, err := conn.Write(out); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v, %v", resp, err)
	}
	r := &wstest.Raw{Conn: conn, R: br}
	readEcho(t, r, "first")
	readEcho(t, r, "second")
}

func TestAFrameSentByteByByteIsRead(t *testing.T) {
	_, srv := serve(t, echo, wsroom.WithLogger(discardLogger()))
	r, _, err := wstest.RawDial(srv.URL+"/ws/lobby", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// Each write is a segment of its own (TCP_NODELAY): every read of the
	// server's ends inside the frame.
	for _, b := range textFrame(t, "one byte at a time") {
		if err := r.Write([]byte{b}); err != nil {
			t.Fatal(err)
		}
	}
	readEcho(t, r, "one byte at a time")
}

func TestFramesOfEverySizeInOneWriteArriveWholeAndInOrder(t *testing.T) {
	_, srv := serve(t, echo, wsroom.WithLogger(discardLogger()))
	r, _, err := wstest.RawDial(srv.URL+"/ws/lobby", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// Sizes around and well past the 4 KiB read buffer, so that reads end
	// at every kind of place: in a header, in a payload, between frames,
	// and payloads too large for the buffer are read straight into place.
	var sizes []int
	for n := 1; n < 300_000; n = n*3/2 + 1 {
		sizes = append(sizes, n, 4096-n%64, 4000+n%200)
	}
	var out []byte
	for i, n := range sizes {
		out = append(out, textFrame(t, content(i, n))...)
	}
	go func() { _ = r.Write(out) }() // written while the echoes are read
	for i, n := range sizes {
		readEcho(t, r, content(i, n))
	}
}

// content is message i's content: n bytes, different for every message.
func content(i, n int) string {
	s := fmt.Sprintf("%d:", i)
	return s + strings.Repeat(string(rune('a'+i%26)), max(0, n-len(s)))
}

func TestConnectionsOverTLSAreReadThroughNetConn(t *testing.T) {
	ep := wsroom.New(echo, wsroom.WithLogger(discardLogger()))
	srv := httptest.NewTLSServer(ep)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := ep.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		srv.Close()
	})
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	events := make(chan string, 16)
	client, _, err := gws.NewClient(&tlsEchoClient{got: events}, &gws.ClientOption{
		Addr:      "wss" + strings.TrimPrefix(srv.URL, "https"),
		TlsConfig: &tls.Config{RootCAs: roots},
	})
	if err != nil {
		t.Fatal(err)
	}
	go client.ReadLoop()
	defer client.NetConn().Close()
	for i, n := range []int{10, 5000, 300_000} {
		p, _ := json.Marshal(chatIn{Type: "message", Content: content(i, n)})
		if err := client.WriteMessage(gws.OpcodeText, p); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-events:
			if got != content(i, n) {
				t.Fatalf("echo of %d bytes, want %d", len(got), n)
			}
		case <-time.After(wstest.Timeout):
			t.Fatalf("no echo of message %d within %v", i, wstest.Timeout)
		}
	}
}

// tlsEchoClient hands the content of every echo to got.
type tlsEchoClient struct {
	gws.BuiltinEventHandler
	got chan<- string
}

func (c *tlsEchoClient) OnMessage(_ *gws.Conn, m *gws.Message) {
	var out chatOut
	_ = json.Unmarshal(m.Bytes(), &out)
	_ = m.Close()
	c.got <- out.Content
}
