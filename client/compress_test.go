package client_test

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/client"
	"github.com/wsroom/wsroom/internal/wstest"
)

// With WithCompression on both sides, permessage-deflate is negotiated:
// the server compresses what it sends the client (Stats.Compressed), the
// client compresses what it sends from the threshold up (Stats.BytesIn
// counts what came, as it came), and every message arrives intact both
// ways, multi-byte text included.
func TestCompressionIsNegotiatedAndMessagesAreIntactBothWays(t *testing.T) {
	wstest.CheckGoroutines(t)
	srv := newServer(t, 100, wsroom.WithCompression(64))
	c := dial(t, deadline(t), srv.url("zip"), client.WithCompression(64))
	next := messages(t, c)
	next() // joined
	texts := []string{
		strings.Repeat("compressible ", 500),
		strings.Repeat("é, ß, 日本語, 🙂 ", 200),
		"short: under the threshold",
	}
	var plain int64
	for _, text := range texts {
		b, _ := json.Marshal(In{Text: text})
		plain += int64(len(b))
		if err := c.Send(In{Text: text}); err != nil {
			t.Fatal(err)
		}
		if m := next(); m.Type != "echo" || m.Text != text {
			t.Fatalf("echo of %d bytes came back as %q of %d bytes", len(text), m.Type, len(m.Text))
		}
	}
	st := srv.ep.Stats()
	if st.Compressed < 2 || st.CompressionSaved < 5000 {
		t.Errorf("server: %d frames compressed, %d bytes saved: want the two long echoes compressed", st.Compressed, st.CompressionSaved)
	}
	if st.BytesIn > plain/3 {
		t.Errorf("server received %d bytes for %d bytes of messages: the client did not compress", st.BytesIn, plain)
	}
	t.Logf("%d bytes of messages sent as %d; the server saved %d bytes on %d frames", plain, st.BytesIn, st.CompressionSaved, st.Compressed)
}

// A client that offers compression to an endpoint without it, and a
// client that does not offer it to an endpoint with it, get plain frames
// both ways, and the messages intact.
func TestCompressionIsNotNegotiatedUnlessBothSidesEnableIt(t *testing.T) {
	wstest.CheckGoroutines(t)
	text := strings.Repeat("compressible ", 500)
	b, _ := json.Marshal(In{Text: text})
	for _, tc := range []struct {
		name   string
		server []wsroom.Option
		client []client.Option
	}{
		{"server without compression", nil, []client.Option{client.WithCompression(1)}},
		{"client without compression", []wsroom.Option{wsroom.WithCompression(1)}, nil},
	} {
		srv := newServer(t, 100, tc.server...)
		c := dial(t, deadline(t), srv.url("plain"), tc.client...)
		next := messages(t, c)
		next() // joined
		if err := c.Send(In{Text: text}); err != nil {
			t.Fatal(err)
		}
		if m := next(); m.Text != text {
			t.Fatalf("%s: the echo came back with %d bytes, want %d", tc.name, len(m.Text), len(text))
		}
		if st := srv.ep.Stats(); st.Compressed != 0 || st.BytesIn != int64(len(b)) {
			t.Errorf("%s: %d frames compressed, %d bytes received for a message of %d: want plain both ways",
				tc.name, st.Compressed, st.BytesIn, len(b))
		}
		_ = c.Close()
	}
}

// The read limit applies to the inflated size: a message that the server
// compresses to a few hundred bytes but that inflates past the limit (a
// decompression bomb) ends the Conn with 1009, without a reconnect.
func TestInflatedMessageOverTheReadLimitIsFinal(t *testing.T) {
	wstest.CheckGoroutines(t)
	srv := newServer(t, 100, wsroom.WithCompression(1))
	st := newStatuses()
	c := dial(t, deadline(t), srv.url("bomb"), client.WithCompression(0), client.WithReadLimit(1000), client.WithStatus(st.add))
	next := messages(t, c)
	next() // joined
	_ = c.Send(In{Text: "big 900"})
	if m := next(); len(m.Text) != 900 {
		t.Fatalf("got %d bytes of text, want 900", len(m.Text))
	}
	saved := srv.ep.Stats().CompressionSaved
	const n = 100000
	_ = c.Send(In{Text: "big " + strconv.Itoa(n)})
	if _, err := finalError(t, c); wsroom.CloseStatus(err) != wsroom.StatusMessageTooBig {
		t.Fatalf("the range ended with %v, want 1009", err)
	}
	if n := st.count(client.Reconnecting); n != 0 {
		t.Errorf("%d reconnections after the read limit", n)
	}
	// The frame itself was within the limit: the inflated size was not.
	// The server's writer counts what it saved once the batch is written,
	// which the client may have read before that count.
	wstest.WaitFor(t, fmt.Sprintf("the server to count the %d-byte message compressed to under the read limit", n), func() bool {
		return srv.ep.Stats().CompressionSaved-saved >= n-1000
	})
}

// A compressed message that does not inflate ends the Conn with 1007,
// without a reconnect: the server would send it again. The server is a
// raw socket that negotiates compression and sends a corrupt stream.
func TestCorruptCompressedMessageIsFinal(t *testing.T) {
	wstest.CheckGoroutines(t)
	var accepted atomic.Int32
	url := rawDeflateServer(t, &accepted, wstest.UnmaskedFrame(true, 0x1|0x40, []byte{0xff, 0xff, 0xff, 0xff}))
	st := newStatuses()
	c := dial(t, deadline(t), url, fast(client.WithCompression(0), client.WithStatus(st.add))...)
	if _, err := finalError(t, c); wsroom.CloseStatus(err) != wsroom.StatusInvalidPayload {
		t.Fatalf("the range ended with %v, want 1007", err)
	}
	if n, a := st.count(client.Reconnecting), accepted.Load(); n != 0 || a != 1 {
		t.Errorf("%d reconnections, %d connections accepted after a corrupt stream", n, a)
	}
}

// A negative threshold is Dial's error.
func TestNegativeCompressionThresholdIsRefused(t *testing.T) {
	wstest.CheckGoroutines(t)
	if _, err := client.Dial[In, Out](deadline(t), "ws://127.0.0.1:1/", client.WithCompression(-1)); err == nil || !strings.Contains(err.Error(), "threshold") {
		t.Fatalf("Dial with a negative threshold: %v", err)
	}
}

// rawDeflateServer listens on a loopback port, answers every upgrade with
// permessage-deflate negotiated, sends frame, and holds the connection
// until the client closes it. It returns the ws:// URL; accepted counts
// the connections.
func rawDeflateServer(t *testing.T, accepted *atomic.Int32, frame []byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			serveRawDeflate(nc, frame)
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
	})
	return "ws://" + ln.Addr().String() + "/"
}

// serveRawDeflate answers one upgrade on nc, sends frame, and reads until
// the client closes.
func serveRawDeflate(nc net.Conn, frame []byte) {
	defer nc.Close()
	br := bufio.NewReader(nc)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	h := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	answer := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: " + base64.StdEncoding.EncodeToString(h[:]) + "\r\n" +
		"Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n\r\n"
	if _, err := nc.Write(append([]byte(answer), frame...)); err != nil {
		return
	}
	var buf [512]byte
	for {
		if _, err := br.Read(buf[:]); err != nil {
			return
		}
	}
}
