package client

import (
	"time"

	"github.com/wsroom/wsroom"
)

// StatusKind says what happened to a Conn's connection.
type StatusKind int

// The kinds of Status, in the order a reconnection reports them.
const (
	// Reconnecting: the connection was lost (Err says why) or an attempt
	// failed; attempt number Attempt is made after Delay.
	Reconnecting StatusKind = iota + 1
	// Reconnected: a new connection is up. Position is where it asked to
	// resume from, zero when the Conn had received no recorded message.
	Reconnected
	// Recovered: the server replayed the Missed recorded messages the Conn
	// had not received; they follow in the stream. Nothing was lost.
	Recovered
	// NotRecovered: the room's history no longer covers the gap (it was
	// trimmed, or lost in a restart: Position.Epoch is the current epoch).
	// Messages were lost; the stream goes on as a fresh join's.
	NotRecovered
)

var kindNames = [...]string{"", "reconnecting", "reconnected", "recovered", "not recovered"}

func (k StatusKind) String() string {
	if k < Reconnecting || k > NotRecovered {
		return "unknown"
	}
	return kindNames[k]
}

// Status is one change of a Conn's connection, reported to the WithStatus
// callback in the order of the stream.
type Status struct {
	Kind     StatusKind
	Attempt  int             // Reconnecting: the attempt about to be made, from 1
	Delay    time.Duration   // Reconnecting: the wait before it
	Err      error           // Reconnecting: why the connection or the last attempt failed
	Missed   int             // Recovered: how many messages were replayed
	Position wsroom.Position // Reconnected: asked from; Recovered, NotRecovered: the notice's epoch
}
