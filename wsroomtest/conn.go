package wsroomtest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/lxzan/gws"
	"github.com/wsroom/wsroom"
)

// Conn is a client connection dialled by Dial: it sends Send values and
// receives Recv values, each as JSON in one text frame. Its reader runs in
// the background, holding what arrives until an assertion takes it; the
// assertions (Receive, Expect, ExpectMatch, ExpectNothing, ExpectClosed)
// take frames in the order they arrived, and are for one goroutine at a
// time. Send may be called from any goroutine.
type Conn[Send, Recv any] struct {
	t       testing.TB
	path    string
	timeout time.Duration
	conn    *gws.Conn
	events  chan event
	done    chan struct{} // closed when the reader has returned
	last    *event        // the last frame an assertion took, quoted when a later one fails
}

// Send writes v as JSON in one text frame, failing the test if it cannot.
func (c *Conn[Send, Recv]) Send(v Send) {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatalf("wsroomtest: %s: encode %T: %v", c.path, v, err)
		return
	}
	c.SendText(string(b))
}

// SendText writes s as it is in one text frame: invalid JSON, a message
// that breaks the schema, anything a client might send.
func (c *Conn[Send, Recv]) SendText(s string) {
	c.t.Helper()
	c.write(gws.OpcodeText, []byte(s))
}

// SendBinary writes b in one binary frame.
func (c *Conn[Send, Recv]) SendBinary(b []byte) {
	c.t.Helper()
	c.write(gws.OpcodeBinary, b)
}

func (c *Conn[Send, Recv]) write(op gws.Opcode, b []byte) {
	c.t.Helper()
	if err := c.conn.WriteMessage(op, b); err != nil {
		c.t.Fatalf("wsroomtest: %s: send %q: %v", c.path, b, err)
	}
}

// Close closes the connection with 1000 and waits until its reader has
// returned. It is safe to call more than once, and Dial calls it at the
// test's cleanup.
func (c *Conn[Send, Recv]) Close() { c.CloseWith(1000, "") }

// CloseWith closes the connection with code and reason, as Close does.
func (c *Conn[Send, Recv]) CloseWith(code wsroom.StatusCode, reason string) {
	_ = c.conn.WriteClose(uint16(code), []byte(reason))
	c.Drop()
}

// Drop closes the socket without a close frame, as a client that
// vanished, and waits until the reader has returned.
func (c *Conn[Send, Recv]) Drop() {
	_ = c.conn.NetConn().Close()
	for { // the reader may be waiting on a full channel: drain it
		select {
		case <-c.done:
			return
		case <-c.events:
		}
	}
}
