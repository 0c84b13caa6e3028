package wsroomtest

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/lxzan/gws"
)

// event is what a client's reader saw: a data frame, or the end of the
// connection.
type event struct {
	data   []byte
	binary bool
	closed bool
	code   uint16 // the server's close code; 0 when the connection ended without one
	reason string
	err    error
}

// String shows the event as a failure message quotes it.
func (e event) String() string {
	switch {
	case e.closed && e.code != 0:
		return fmt.Sprintf("close %d %s", e.code, strconv.Quote(e.reason))
	case e.closed:
		return fmt.Sprintf("the connection's end without a close frame (%v)", e.err)
	case e.binary:
		return fmt.Sprintf("binary frame %q", e.data)
	}
	return string(e.data)
}

// reader is the gws event handler of a client: it hands each frame to the
// test through the events channel, waiting while the channel is full (the
// client then reads no more from its socket, as a slow client).
type reader struct {
	gws.BuiltinEventHandler
	events chan<- event
}

func (r *reader) OnPing(c *gws.Conn, p []byte) { _ = c.WritePong(p) }

func (r *reader) OnMessage(_ *gws.Conn, m *gws.Message) {
	r.events <- event{data: append([]byte(nil), m.Bytes()...), binary: m.Opcode == gws.OpcodeBinary}
	_ = m.Close()
}

func (r *reader) OnClose(_ *gws.Conn, err error) {
	ev := event{closed: true, err: err}
	var ce *gws.CloseError
	if errors.As(err, &ce) {
		ev.code, ev.reason = ce.Code, string(ce.Reason)
	}
	r.events <- ev
}
