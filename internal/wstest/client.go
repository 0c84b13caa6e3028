// Package wstest holds the helpers wsroom's tests share: a real WebSocket
// client (gws's) driven synchronously, raw frame writing for hostile input,
// and a goroutine leak check. Waits use deadlines, never sleeps.
package wstest

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lxzan/gws"
)

// Timeout bounds every wait of a test helper.
const Timeout = 10 * time.Second

// Event is one thing a client observed: a data message, or the end of the
// connection (Closed set, with the close code the server sent, 0 if none).
type Event struct {
	Opcode gws.Opcode
	Data   []byte
	Closed bool
	Code   uint16
	Reason string
	Err    error
}

// Client is a real WebSocket client whose reader runs in the background and
// reports into a buffered channel that tests consume with deadlines.
type Client struct {
	Pings   atomic.Int64 // pings received from the server
	Header  http.Header  // the headers of the server's 101 answer
	conn    *gws.Conn
	events  chan Event
	done    chan struct{}
	started bool
}

// Options change how Dial connects.
type Options struct {
	Header http.Header
	Paused bool // do not read until Resume: a client that stops reading
	Silent bool // do not answer pings: a peer that looks dead
	Buffer int  // events buffered before the reader blocks (default 1<<16)
	// Deflate offers permessage-deflate as browsers do ("permessage-deflate;
	// client_max_window_bits"); once negotiated, the client compresses
	// every message it sends and inflates what it receives.
	Deflate bool
}

type handler struct {
	gws.BuiltinEventHandler
	c      *Client
	silent bool
}

func (h *handler) OnPing(s *gws.Conn, p []byte) {
	h.c.Pings.Add(1)
	if !h.silent {
		_ = s.WritePong(p)
	}
}

func (h *handler) OnMessage(_ *gws.Conn, m *gws.Message) {
	h.c.events <- Event{Opcode: m.Opcode, Data: append([]byte(nil), m.Bytes()...)}
	_ = m.Close()
}

func (h *handler) OnClose(_ *gws.Conn, err error) {
	ev := Event{Closed: true, Err: err}
	var ce *gws.CloseError
	if errors.As(err, &ce) {
		ev.Code, ev.Reason = ce.Code, string(ce.Reason)
	}
	h.c.events <- ev
}

// Dial connects to url (http:// or ws://) and fails the test if the
// upgrade does not succeed. The connection is closed at cleanup.
func Dial(t testing.TB, url string, opts ...Options) *Client {
	t.Helper()
	c, status, err := TryDial(url, opts...)
	if err != nil {
		t.Fatalf("dial %s: status %d: %v", url, status, err)
	}
	t.Cleanup(c.Close)
	return c
}

// TryDial connects to url and returns the client, or the HTTP status of the
// refused upgrade and the error.
func TryDial(url string, opts ...Options) (*Client, int, error) {
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.Buffer == 0 {
		o.Buffer = 1 << 16
	}
	c := &Client{events: make(chan Event, o.Buffer), done: make(chan struct{})}
	conn, resp, err := gws.NewClient(&handler{c: c, silent: o.Silent}, &gws.ClientOption{
		Addr:               "ws" + strings.TrimPrefix(url, "http"),
		RequestHeader:      o.Header,
		ReadMaxPayloadSize: 64 << 20,
		CheckUtf8Enabled:   true,
		PermessageDeflate: gws.PermessageDeflate{
			Enabled: o.Deflate, ServerContextTakeover: true, ClientContextTakeover: true, Threshold: 1,
		},
	})
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		return nil, status, err
	}
	c.conn, c.Header = conn, resp.Header
	if !o.Paused {
		c.Resume()
	}
	return c, http.StatusSwitchingProtocols, nil
}

// Resume starts the reader of a client dialled with Paused.
func (c *Client) Resume() {
	c.started = true
	go func() {
		defer close(c.done)
		c.conn.ReadLoop()
	}()
}

// Conn returns the underlying gws connection.
func (c *Client) Conn() *gws.Conn { return c.conn }

// NetConn returns the socket, to write raw bytes.
func (c *Client) NetConn() net.Conn { return c.conn.NetConn() }

// Send writes v as JSON in one text frame.
func (c *Client) Send(t testing.TB, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	c.SendText(t, string(b))
}

// SendText writes s in one text frame.
func (c *Client) SendText(t testing.TB, s string) {
	t.Helper()
	if err := c.conn.WriteString(s); err != nil {
		t.Fatalf("send: %v", err)
	}
}

// Next returns the next event, failing the test after Timeout.
func (c *Client) Next(t testing.TB) Event {
	t.Helper()
	select {
	case ev, ok := <-c.events:
		if !ok {
			t.Fatal("client reader ended without a close event")
		}
		return ev
	case <-time.After(Timeout):
		t.Fatal("no event within", Timeout)
	}
	return Event{}
}

// NextWithin returns the next event, or false if none came within d.
func (c *Client) NextWithin(d time.Duration) (Event, bool) {
	select {
	case ev, ok := <-c.events:
		return ev, ok
	case <-time.After(d):
		return Event{}, false
	}
}

// Message returns the next data message, failing the test if the
// connection ends first.
func (c *Client) Message(t testing.TB) []byte {
	t.Helper()
	ev := c.Next(t)
	if ev.Closed {
		t.Fatalf("connection closed (code %d %q, %v) while a message was expected", ev.Code, ev.Reason, ev.Err)
	}
	return ev.Data
}

// JSON decodes the next data message into v.
func (c *Client) JSON(t testing.TB, v any) {
	t.Helper()
	data := c.Message(t)
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("message %q: %v", data, err)
	}
}

// Closed skips data messages until the connection ends and returns the
// close event.
func (c *Client) Closed(t testing.TB) Event {
	t.Helper()
	deadline := time.After(Timeout)
	for {
		select {
		case ev, ok := <-c.events:
			if !ok {
				t.Fatal("client reader ended without a close event")
			}
			if ev.Closed {
				return ev
			}
		case <-deadline:
			t.Fatal("connection not closed within", Timeout)
		}
	}
}

// Close closes the connection with 1000 and waits for the reader to end.
func (c *Client) Close() {
	_ = c.conn.WriteClose(1000, nil)
	_ = c.conn.NetConn().Close()
	for c.started { // the reader may be blocked on a full channel: drain it
		select {
		case <-c.done:
			return
		case <-c.events:
		}
	}
}

// Frame returns a masked client frame: fin, opcode and payload as given.
func Frame(fin bool, opcode byte, payload []byte) []byte {
	return append(FrameHeader(fin, opcode, uint64(len(payload))), Mask(payload, 0)...)
}

// frameMask is the masking key of every client frame built here.
var frameMask = [4]byte{0x12, 0x34, 0x56, 0x78}

// frameHeader returns a frame's header up to the masking key; maskBit is
// 0x80 for a masked frame, 0 for an unmasked one.
func frameHeader(fin bool, opcode byte, n uint64, maskBit byte) []byte {
	b0 := opcode
	if fin {
		b0 |= 0x80
	}
	f := []byte{b0}
	switch {
	case n < 126:
		f = append(f, maskBit|byte(n))
	case n <= 0xFFFF:
		f = append(f, maskBit|126, byte(n>>8), byte(n))
	default:
		f = append(f, maskBit|127)
		f = binary.BigEndian.AppendUint64(f, n)
	}
	return f
}
