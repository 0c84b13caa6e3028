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
	if end <= 0 || end > 64 || !validEpoch(rest[:end]) {
		return wsroom.Position{}, false
	}
	return wsroom.Position{Offset: offset, Epoch: string(rest[:end])}, true
}

// validEpoch reports whether epoch is of the characters the server's
// epochs are made of: those that need no escaping in JSON.
func validEpoch(epoch []byte) bool {
	for _, b := range epoch {
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-' || b == '_') {
			return false
		}
	}
	return true
}

// notice is the recovery notice.
type notice struct {
	Type      string `json:"type"`
	Recovered *bool  `json:"recovered"`
	Epoch     string `json:"epoch"`
	Missed    *int   `json:"missed"`
}

// parseNotice returns the recovery notice data holds, and whether it is
// one: exactly the notice's four fields, of their types.
func parseNotice(data []byte) (notice, bool) {
	if !bytes.HasPrefix(data, []byte(`{"type":"recovery",`)) {
		return notice{}, false
	}
	var n notice
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if d.Decode(&n) != nil || n.Type != "recovery" || n.Recovered == nil || n.Missed == nil || *n.Missed < 0 || n.Epoch == "" {
		return notice{}, false
	}
	return n, true
}

// status is the Status a notice reports.
func (n notice) status() Status {
	s := Status{Kind: NotRecovered, Position: wsroom.Position{Epoch: n.Epoch}}
	if *n.Recovered {
		s.Kind, s.Missed = Recovered, *n.Missed
	}
	return s
}
