package client

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/wsroom/wsroom"
)

// The client's side of wsroom's recovery protocol (the server's is in
// wsroom's recovery.go): a recorded message is a JSON object that begins
// {"seq":N,"epoch":"E", and the notice that answers a connection that
// asked to recover is {"type":"recovery","recovered":B,"epoch":"E","missed":N}.

// recordedPosition returns the position a recorded message carries in
// front, and whether it is one. The server writes the two fields first
// and in this form, so that a client reads them without decoding the
// message.
func recordedPosition(data []byte) (wsroom.Position, bool) {
	rest, ok := bytes.CutPrefix(data, []byte(`{"seq":`))
	if !ok {
		return wsroom.Position{}, false
	}
	n := 0
	for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
		n++
	}
	offset, err := strconv.ParseUint(string(rest[:n]), 10, 64)
	if err != nil {
		return wsroom.Position{}, false
	}
	rest, ok = bytes.CutPrefix(rest[n:], []byte(`,"epoch":"`))
	if !ok {
		return wsroom.Position{}, false
	}
	end := bytes.IndexByte(rest, '"')
	if end < 0 || !validEpoch(rest[:end]) {
		return wsroom.Position{}, false
	}
	return wsroom.Position{Offset: offset, Epoch: string(rest[:end])}, true
}

// validEpoch reports whether epoch is as the server's epochs are: 1 to
// 64 of the characters that need no escaping in JSON.
func validEpoch(epoch []byte) bool {
	if len(epoch) == 0 || len(epoch) > 64 {
		return false
	}
	for _, b := range epoch {
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-' || b == '_') {
			return false
		}
	}
	return true
}

// notice is the recovery notice.
type notice struct {
	Epoch     string
	Recovered bool
	Missed    int
}

// parseNotice returns the recovery notice data holds, and whether it is
// one: exactly the notice's four fields, by their exact names (not
// encoding/json's case-insensitive match), of their types.
func parseNotice(data []byte) (notice, bool) {
	if !bytes.HasPrefix(data, []byte(`{"type":"recovery",`)) {
		return notice{}, false
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(data, &fields) != nil || len(fields) != 4 {
		return notice{}, false
	}
	var n notice
	var typ string
	ok := read(fields["type"], &typ) && typ == "recovery" &&
		read(fields["recovered"], &n.Recovered) &&
		read(fields["epoch"], &n.Epoch) && validEpoch([]byte(n.Epoch)) &&
		read(fields["missed"], &n.Missed) && n.Missed >= 0
	return n, ok
}

// read decodes the value of a field into v, and reports whether it was
// one of v's type: null, which encoding/json lets through, is not.
func read(raw json.RawMessage, v any) bool {
	return len(raw) > 0 && raw[0] != 'n' && json.Unmarshal(raw, v) == nil
}

// status is the Status a notice reports.
func (n notice) status() Status {
	s := Status{Kind: NotRecovered, Position: wsroom.Position{Epoch: n.Epoch}}
	if n.Recovered {
		s.Kind, s.Missed = Recovered, n.Missed
	}
	return s
}
