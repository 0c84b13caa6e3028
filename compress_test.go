package wsroom_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/flate"
	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/wstest"
)

// browserOffer is the extension offer of Chromium, Firefox and Safari.
const browserOffer = "permessage-deflate; client_max_window_bits"

const deflateAnswer = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"

func offer(ext string) http.Header { return http.Header{"Sec-Websocket-Extensions": {ext}} }

// TestCompressionIsNegotiatedOnlyWhenEnabledAndOfferedAcceptably: each
// offer, on an endpoint with compression and on one without, gets the
// answer RFC 7692 allows: permessage-deflate without context takeover on
// either side, or no extension at all.
func TestCompressionIsNegotiatedOnlyWhenEnabledAndOfferedAcceptably(t *testing.T) {
	wstest.CheckGoroutines(t)
	_, on := serve(t, echo, wsroom.WithCompression(0))
	_, off := serve(t, echo)
	cases := []struct {
		offer  string
		accept bool
	}{
		{browserOffer, true},
		{"permessage-deflate", true},
		{"permessage-deflate; server_no_context_takeover; client_no_context_takeover", true},
		{"permessage-deflate; client_max_window_bits=10", true},
		{`permessage-deflate; client_max_window_bits="12"`, true},
		{"PerMessage-Deflate ; Client_Max_Window_Bits", true},
		{"permessage-deflate; server_max_window_bits=10, permessage-deflate", true}, // the second offer
		{"x-webkit-deflate-frame, permessage-deflate", true},
		{"", false},
		{"x-webkit-deflate-frame", false},
		{"permessage-deflate; server_max_window_bits=10", false}, // a smaller window than wsroom compresses with
		{"permessage-deflate; server_max_window_bits=15", false},
		{"permessage-deflate; client_max_window_bits=16", false},
		{"permessage-deflate; client_max_window_bits=7", false},
		{"permessage-deflate; client_max_window_bits=x", false},
		{"permessage-deflate; server_no_context_takeover; server_no_context_takeover", false},
		{"permessage-deflate; server_no_context_takeover=1", false},
		{"permessage-deflate; unknown", false},
		{"permessage-deflate;", false},
	}
	for _, tc := range cases {
		for _, srv := range []struct {
			url     string
			enabled bool
		}{{on.URL, true}, {off.URL, false}} {
			h := http.Header{}
			if tc.offer != "" {
				h = offer(tc.offer)
			}
			r, _, err := wstest.RawDial(srv.url+"/ws/lobby", h)
			if err != nil {
				t.Fatalf("%q: %v", tc.offer, err)
			}
			got := r.Header.Get("Sec-WebSocket-Extensions")
			want := ""
			if tc.accept && srv.enabled {
				want = deflateAnswer
			}
			if got != want {
				t.Errorf("offer %q, compression enabled %v: answered %q, want %q", tc.offer, srv.enabled, got, want)
			}
			_ = r.Close()
		}
	}
}

// TestCompressionOptionRefusesANegativeThreshold: a threshold below zero
// is a programming error, found in New.
func TestCompressionOptionRefusesANegativeThreshold(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("New accepted WithCompression(-1)")
		}
	}()
	wsroom.New(echo, wsroom.WithCompression(-1))
}

// relay publishes every inbound message to the room, numbered per sender.
func relay(rooms *wsroom.Rooms[chatOut]) wsroom.Handler[chatIn, chatOut] {
	return func(c *wsroom.Conn[chatOut], msgs iter.Seq2[chatIn, error]) error {
		room := rooms.Room(c.Request().PathValue("room"))
		leave, err := room.Subscribe(c)
		if err != nil {
			return err
		}
		defer leave()
		seq := 0
		for msg, err := range msgs {
			if err != nil {
				return err
			}
			seq++
			if err := room.Publish(chatOut{Type: msg.Type, From: c.ID(), Content: msg.Content, Seq: seq}); err != nil {
				return err
			}
		}
		return nil
	}
}

// chatText returns the text of message i from sender s: every third one
// under the default threshold, the others well over it.
func chatText(s, i int) string {
	if i%3 == 0 {
		return fmt.Sprintf("short %d/%d", s, i)
	}
	return fmt.Sprintf("long %d/%d %s", s, i, strings.Repeat("compressible chat text ", 20+i%7))
}

// TestMixedRoomDeliversTheSameMessagesToCompressingAndPlainMembers: a room
// of members that negotiated compression (gws's client, and raw clients
// that see the frames themselves) and members that did not, while four
// senders (two of them sending compressed) publish at once. Every member
// decodes the same messages, each sender's in order; the raw members get
// RSV1 frames for the messages over the threshold only, and the same
// bytes for each: the publish was compressed once for all of them.
func TestMixedRoomDeliversTheSameMessagesToCompressingAndPlainMembers(t *testing.T) {
	wstest.CheckGoroutines(t)
	rooms := wsroom.NewRooms[chatOut]()
	ep, srv := serve(t, relay(rooms), wsroom.WithCompression(0))
	url := srv.URL + "/ws/lobby"
	const senders, each = 4, 150

	type member struct {
		name string
		next func() (chatOut, []byte, bool) // the message, its frame as sent (raw members), whether it came compressed
	}
	var members []member
	for i := range 3 {
		for _, deflate := range []bool{true, false} {
			c := wstest.Dial(t, url, wstest.Options{Deflate: deflate})
			if got := c.Header.Get("Sec-WebSocket-Extensions"); (got != "") != deflate {
				t.Fatalf("client offering deflate %v: answered %q", deflate, got)
			}
			members = append(members, member{name: fmt.Sprintf("gws %d deflate=%v", i, deflate), next: func() (chatOut, []byte, bool) {
				var m chatOut
				c.JSON(t, &m)
				return m, nil, false
			}})
		}
	}
	for i := range 2 {
		r, _, err := wstest.RawDial(url, offer(browserOffer))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Close() })
		r.Deflate = true
		members = append(members, member{name: fmt.Sprintf("raw %d", i), next: func() (chatOut, []byte, bool) {
			f, err := r.ReadFrame(1 << 20)
			if err != nil {
				t.Fatalf("raw %d: %v", i, err)
			}
			payload := f.Payload
			if f.RSV != 0 {
				payload = inflateServerFrame(t, payload)
			}
			var m chatOut
			if err := json.Unmarshal(payload, &m); err != nil {
				t.Fatalf("raw %d: %q: %v", i, payload, err)
			}
			return m, f.Payload, f.RSV != 0
		}})
	}
	var ids [senders]uint64
	var clients [senders]*wstest.Client
	for s := range senders {
		clients[s] = wstest.Dial(t, url, wstest.Options{Deflate: s%2 == 0})
	}
	wstest.WaitFor(t, "everyone subscribed", func() bool { return rooms.Room("lobby").Len() == len(members)+senders })
	var wg sync.WaitGroup
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 1; i <= each; i++ {
				clients[s].Send(t, chatIn{Type: "message", Content: chatText(s, i)})
			}
		}()
	}
	wg.Wait()

	// Learn each sender's ID from its own first message.
	for s := range senders {
		for {
			var m chatOut
			clients[s].JSON(t, &m)
			if m.Content == chatText(s, 1) {
				ids[s] = m.From
				break
			}
		}
	}
	sender := func(from uint64) int {
		for s, id := range ids {
			if id == from {
				return s
			}
		}
		t.Fatalf("a message from %d, no sender's", from)
		return -1
	}
	wire := map[string][]byte{} // "from/seq" → the first raw member's frame
	for _, m := range members {
		last := [senders]int{}
		for range senders * each {
			msg, frame, compressed := m.next()
			s := sender(msg.From)
			if msg.Seq != last[s]+1 || msg.Content != chatText(s, msg.Seq) {
				t.Fatalf("%s: from sender %d got seq %d %q after seq %d", m.name, s, msg.Seq, msg.Content, last[s])
			}
			last[s] = msg.Seq
			if frame == nil {
				continue
			}
			if long := msg.Seq%3 != 0; compressed != long {
				t.Fatalf("%s: message %d/%d compressed %v, want %v", m.name, s, msg.Seq, compressed, long)
			}
			key := fmt.Sprint(s, "/", msg.Seq)
			if first, ok := wire[key]; !ok {
				wire[key] = frame
			} else if !bytes.Equal(first, frame) {
				t.Fatalf("%s: message %s came in other bytes than to the first raw member", m.name, key)
			}
		}
	}
	st := ep.Stats()
	// Each long message reached the 2 raw, 3 gws and 2 sending members that compress.
	if want := int64(senders * each * 2 / 3 * 7); st.Compressed != want || st.CompressionSaved <= 0 {
		t.Errorf("stats: %d frames compressed, %d bytes saved; want %d frames and some bytes", st.Compressed, st.CompressionSaved, want)
	}
}

// inflateServerFrame inflates a compressed frame's payload, which lacks the
// final empty stored block.
func inflateServerFrame(t testing.TB, payload []byte) []byte {
	t.Helper()
	r := flate.NewReader(io.MultiReader(bytes.NewReader(payload), bytes.NewReader([]byte{0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff})))
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("inflate %d bytes: %v", len(payload), err)
	}
	return out
}

// deflate compresses p as a client does, the empty stored block at its
// end left out.
func deflate(t testing.TB, p []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.BestCompression)
	_, _ = w.Write(p)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte{0, 0, 0xff, 0xff})
}

// TestSendCompressesEachMessageForACompressingPeerOnly: a direct send is
// compressed for the connection that negotiated it, over the threshold
// only, and plain for the one that did not; both decode the same.
func TestSendCompressesEachMessageForACompressingPeerOnly(t *testing.T) {
	wstest.CheckGoroutines(t)
	_, srv := serve(t, echo, wsroom.WithCompression(100))
	long := strings.Repeat("abc ", 50)
	for _, offered := range []bool{true, false} {
		h := http.Header{}
		if offered {
			h = offer(browserOffer)
		}
		r, _, err := wstest.RawDial(srv.URL+"/ws/lobby", h)
		if err != nil {
			t.Fatal(err)
		}
		r.Deflate = offered
		for _, text := range []string{long, "short", long} {
			msg := []byte(`{"type":"message","content":"` + text + `"}`)
			send := wstest.Frame(true, 1, msg)
			if offered {
				send = wstest.Frame(true, 0x41, deflate(t, msg))
			}
			if err := r.Write(send); err != nil {
				t.Fatal(err)
			}
			f, err := r.ReadFrame(1 << 20)
			if err != nil {
				t.Fatal(err)
			}
			payload := f.Payload
			if f.RSV != 0 {
				payload = inflateServerFrame(t, payload)
			}
			var m chatOut
			if err := json.Unmarshal(payload, &m); err != nil || m.Content != text {
				t.Fatalf("offered %v: echo of %d bytes: %q, %v", offered, len(text), payload, err)
			}
			if want := offered && text == long; (f.RSV != 0) != want {
				t.Errorf("offered %v: echo of %d bytes compressed %v, want %v", offered, len(text), f.RSV != 0, want)
			}
		}
		_ = r.Close()
	}
}

// TestCompressedMessagesOverTLS: on a socket read through net.Conn (TLS),
// compressed messages are found and inflated too, after pings, in
// fragments with a ping between them, and larger than gws's read buffer.
func TestCompressedMessagesOverTLS(t *testing.T) {
	wstest.CheckGoroutines(t)
	ep := wsroom.New(echo, wsroom.WithLogger(discardLogger()), wsroom.WithCompression(1))
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
	conn, err := tls.Dial("tcp", srv.Listener.Addr().String(), &tls.Config{RootCAs: roots, ServerName: "example.com"})
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := wstest.RawUpgrade(conn, srv.Listener.Addr().String(), "/", offer(browserOffer))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Deflate = r.Header.Get("Sec-WebSocket-Extensions") == deflateAnswer; !r.Deflate {
		t.Fatalf("answered %q", r.Header.Get("Sec-WebSocket-Extensions"))
	}
	F := wstest.Frame
	msg := func(text string) []byte { return deflate(t, []byte(`{"type":"message","content":"`+text+`"}`)) }
	big := strings.Repeat("0123456789", 500)
	frag := msg("in fragments")
	send := cat(
		F(true, 9, []byte("first")), F(true, 0x41, msg("after a ping")),
		F(false, 0x41, frag[:4]), F(true, 9, []byte("between")), F(true, 0, frag[4:]),
		F(true, 0x41, msg(big)),
	)
	if err := r.Write(send); err != nil {
		t.Fatal(err)
	}
	want := []string{"pong first", "after a ping", "pong between", "in fragments", big}
	_ = r.Conn.SetReadDeadline(time.Now().Add(wstest.Timeout))
	for _, w := range want {
		f, err := r.ReadFrame(1 << 20)
		if err != nil {
			t.Fatalf("waiting for %.20q: %v", w, err)
		}
		got := "pong " + string(f.Payload)
		if f.Opcode == 1 {
			var m chatOut
			p := f.Payload
			if f.RSV != 0 {
				p = inflateServerFrame(t, p)
			}
			if err := json.Unmarshal(p, &m); err != nil {
				t.Fatal(err)
			}
			got = m.Content
		}
		if got != w {
			t.Fatalf("got %.40q, want %.40q", got, w)
		}
	}
}
