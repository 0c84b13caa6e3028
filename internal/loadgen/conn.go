package loadgen

import (
	"bytes"
	"strconv"
	"sync"
	"time"

	"github.com/lxzan/gws"
)

// conn is one client connection's event handler: member id of room r<room>.
type conn struct {
	gws.BuiltinEventHandler
	c        *clients
	ws       *gws.Conn
	index    int // among all connections
	room, id int
	framed   bool    // a frame has been received; read loop only
	nextPub  int64   // seq of the publisher's next message; read loop only
	next     []int64 // seq of each member's next message; read loop only
	sendMu   sync.Mutex
	sent     int64 // chat messages sent, under sendMu
	limit    int64 // chat messages to send in all, under sendMu
	sendBuf  []byte
}

// publisherID is the "from" of the benchmark's publisher's messages.
const publisherID = -1

var (
	typeJoined  = []byte(`{"type":"joined"`)
	typeMessage = []byte(`{"type":"message"`)
	fromKey     = []byte(`"from":`)
	seqKey      = []byte(`"seq":`)
	sentKey     = []byte(`"sent":`)
	chatText    = `{"type":"message","text":"hello, everyone in the room!","seq":`
)

func (h *conn) OnMessage(_ *gws.Conn, m *gws.Message) {
	now := time.Now().UnixNano()
	p := m.Bytes()
	first := !h.framed
	h.framed = true
	from, ok := intField(p, fromKey)
	switch {
	case !ok:
		h.c.fail("connection %d: a frame without from: %.200q", h.index, p)
	case bytes.HasPrefix(p, typeJoined):
		h.joined(from, first)
	case bytes.HasPrefix(p, typeMessage):
		seq, ok1 := intField(p, seqKey)
		sent, ok2 := intField(p, sentKey)
		if !ok1 || !ok2 {
			h.c.fail("connection %d: message without seq and sent: %.200q", h.index, p)
			break
		}
		h.message(from, seq, now-sent*1e3)
	default:
		h.c.fail("connection %d: unexpected frame %.200q", h.index, p)
	}
	_ = m.Close()
}

// joined counts one join announcement; with Announce a connection's first
// frame is its own.
func (h *conn) joined(from int64, first bool) {
	if !h.c.cfg.Announce {
		h.c.fail("connection %d: a join announced, with announcements off", h.index)
		return
	}
	if first && from != int64(h.id) {
		h.c.fail("connection %d (member %d): first frame is member %d's join, not its own", h.index, h.id, from)
	}
	if h.c.joins.Add(1) == h.c.wantJoins {
		close(h.c.joinsDone)
	}
}

// message checks that seq is the next message from member from (or the
// publisher), records its latency and counts it.
func (h *conn) message(from, seq, latency int64) {
	var want *int64
	switch {
	case from == publisherID:
		want = &h.nextPub
	case from >= 0 && from < int64(len(h.next)):
		want = &h.next[from]
	default:
		h.c.fail("connection %d: message from member %d, in a room of %d", h.index, from, len(h.next))
		return
	}
	if seq != *want {
		h.c.fail("connection %d: got message %d from %d, want %d: a delivery is missing or out of order", h.index, seq, from, *want)
		*want = seq + 1
		return
	}
	*want = seq + 1
	h.c.hist.Record(latency)
	if from == publisherID {
		slot := &h.c.pending[seq%Ring]
		if slot.Add(1) == int32(h.c.cfg.Conns) {
			slot.Store(0)
			h.c.delivered(seq)
		}
		return
	}
	if from == int64(h.id) {
		h.sendNext()
	}
	if h.c.chatGot.Add(1) == h.c.chatWant.Load() {
		h.c.say("chatted")
	}
}

// sendNext sends this member's next chat message, if it has one left.
func (h *conn) sendNext() {
	h.sendMu.Lock()
	defer h.sendMu.Unlock()
	if h.sent >= h.limit {
		return
	}
	b := strconv.AppendInt(append(h.sendBuf[:0], chatText...), h.sent, 10)
	b = strconv.AppendInt(append(b, `,"sent":`...), time.Now().UnixMicro(), 10)
	h.sendBuf = append(b, '}')
	h.sent++
	if err := h.ws.WriteMessage(gws.OpcodeText, h.sendBuf); err != nil {
		h.c.fail("connection %d: send: %v", h.index, err)
	}
}

func (h *conn) OnClose(_ *gws.Conn, err error) {
	if !h.c.closing.Load() {
		h.c.fail("connection %d closed: %v", h.index, err)
	}
}

// intField reads the integer after key in a JSON object written by
// encoding/json (no spaces).
func intField(p, key []byte) (int64, bool) {
	i := bytes.Index(p, key)
	if i < 0 {
		return 0, false
	}
	p = p[i+len(key):]
	neg := len(p) > 0 && p[0] == '-'
	if neg {
		p = p[1:]
	}
	var v int64
	n := 0
	for n < len(p) && p[n] >= '0' && p[n] <= '9' {
		v = v*10 + int64(p[n]-'0')
		n++
	}
	if neg {
		v = -v
	}
	return v, n > 0
}
