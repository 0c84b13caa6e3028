package client

import (
	"bytes"
	"encoding/json"
	"errors"

	"github.com/lxzan/gws"
)

// errBinary is why a binary frame is no message: wsroom sends JSON text.
var errBinary = errors.New("a binary frame")

// reader handles the events of one link's connection, in its ReadLoop.
type reader[Send, Recv any] struct {
	c *Conn[Send, Recv]
	l *link
}

func (r *reader[Send, Recv]) OnOpen(*gws.Conn) {}

func (r *reader[Send, Recv]) OnClose(_ *gws.Conn, err error) { r.l.err = err }

func (r *reader[Send, Recv]) OnPing(ws *gws.Conn, payload []byte) {
	r.c.touch(ws)
	r.c.writeDeadline(ws)
	_ = ws.WritePong(payload)
}

func (r *reader[Send, Recv]) OnPong(ws *gws.Conn, _ []byte) { r.c.touch(ws) }

func (r *reader[Send, Recv]) OnMessage(ws *gws.Conn, m *gws.Message) {
	r.c.touch(ws)
	r.c.receive(r.l, m.Opcode, m.Bytes())
	_ = m.Close()
}

// receive turns one frame into what the range sees: a status for a
// recovery notice, nothing for a recorded message already received, a
// message or its error otherwise. data is valid during the call only.
func (c *Conn[Send, Recv]) receive(l *link, op gws.Opcode, data []byte) {
	if op != gws.OpcodeText {
		c.push(item[Recv]{err: &InvalidMessageError{Data: bytes.Clone(data), Err: errBinary}})
		return
	}
	if l.asked {
		if n, ok := parseNotice(data); ok {
			st := n.status()
			c.push(item[Recv]{status: &st})
			return
		}
	}
	pos, recorded := recordedPosition(data)
	if recorded {
		c.mu.Lock()
		seen := pos.Epoch == c.last.Epoch && pos.Offset <= c.last.Offset
		if !seen {
			c.last = pos
		}
		c.mu.Unlock()
		if seen {
			return // replayed again, or still on its way when the connection dropped
		}
	}
	it := item[Recv]{pos: pos}
	err := json.Unmarshal(data, &it.msg)
	if err == nil && c.valid != nil {
		err = c.valid.check(data, recorded)
	}
	if err != nil {
		it = item[Recv]{pos: pos, err: &InvalidMessageError{Data: bytes.Clone(data), Err: err}}
	}
	c.push(it)
}
