package wsroom

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
)

// The recovery protocol. A recorded message reaches clients as its JSON
// object with two fields in front, "seq" (its offset) and "epoch". A client
// that reconnects puts the last position it saw in the upgrade request's
// query (?since=SEQ&epoch=EPOCH); joining a room with history then sends
// it, before anything else, the notice
//
//	{"type":"recovery","recovered":true,"epoch":"...","missed":N}
//
// followed, when recovered, by the N recorded messages it missed, then the
// live stream. The README has the table.

// The upgrade query parameters of the recovery protocol.
const (
	QuerySince = "since"
	QueryEpoch = "epoch"
)

// errBadPosition refuses an upgrade whose position is malformed.
var errBadPosition = errors.New("wsroom: since must be a non-negative integer, given with epoch")

// requestedPosition reads the position a reconnecting client gives in r's
// query. It returns nil when there is none, and an error, answered with
// 400 before any upgrade, when since is not a non-negative integer or
// comes without epoch.
func requestedPosition(r *http.Request) (*Position, error) {
	q := r.URL.Query()
	if !q.Has(QuerySince) {
		return nil, nil
	}
	offset, err := strconv.ParseUint(q.Get(QuerySince), 10, 64)
	epoch := q.Get(QueryEpoch)
	if err != nil || epoch == "" {
		return nil, errBadPosition
	}
	return &Position{Offset: offset, Epoch: epoch}, nil
}

// recoveryNotice is the frame that tells a reconnecting client whether its
// history was recovered.
type recoveryNotice struct {
	Type      string `json:"type"` // "recovery"
	Recovered bool   `json:"recovered"`
	Epoch     string `json:"epoch"`
	Missed    int    `json:"missed"`
}

func noticeFrame(recovered bool, epoch string, missed int) []byte {
	frame, _ := encodeFrame(&recoveryNotice{Type: "recovery", Recovered: recovered, Epoch: epoch, Missed: missed})
	return frame
}

// errNotAnObject is why a message cannot be recorded: its position goes
// into its JSON object.
var errNotAnObject = errors.New("a recorded message must encode as a JSON object")

// recordedFrame frames the JSON object obj with the position in front:
// {"seq":offset,"epoch":"epoch",...obj's fields}. epoch needs no escaping
// (newEpoch makes it of hex digits).
func recordedFrame(obj []byte, offset uint64, epoch string) []byte {
	var num [20]byte
	seq := strconv.AppendUint(num[:0], offset, 10)
	rest := obj[1:] // after the '{'
	sep := ","
	if len(rest) == 1 { // "}": the object has no fields
		sep = ""
	}
	n := len(`{"seq":`) + len(seq) + len(`,"epoch":"`) + len(epoch) + len(`"`) + len(sep) + len(rest)
	h := headerLen(n)
	f := make([]byte, h, h+n)
	putHeader(f, opText, n)
	f = append(f, `{"seq":`...)
	f = append(f, seq...)
	f = append(f, `,"epoch":"`...)
	f = append(f, epoch...)
	f = append(f, '"')
	f = append(f, sep...)
	return append(f, rest...)
}

// encodeObject encodes m as the JSON object a recorded frame carries, with
// a pooled encoder: the bytes are valid until e.release().
func encodeObject(m any) (e *encoder, obj []byte, err error) {
	e, obj, err = encodeJSON(m)
	switch {
	case err != nil:
		return e, nil, fmt.Errorf("wsroom: encode: %w", err)
	case len(obj) < 2 || obj[0] != '{':
		return e, nil, fmt.Errorf("wsroom: encode: %w", errNotAnObject)
	}
	return e, obj, nil
}
