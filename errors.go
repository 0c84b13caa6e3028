package wsroom

import (
	"errors"
	"fmt"
)

// CloseError describes how a connection ended. It is the error the inbound
// stream yields when a connection ends abnormally, the cause of a closed
// connection's Context, and what a handler may return to choose the close code
// sent to the peer.
type CloseError struct {
	Code   StatusCode
	Reason string
}

func (e *CloseError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("wsroom: connection closed: %d", e.Code)
	}
	return fmt.Sprintf("wsroom: connection closed: %d %s", e.Code, e.Reason)
}

// CloseStatus returns the close code carried by err (a *CloseError anywhere in
// its chain), or 0 when there is none.
func CloseStatus(err error) StatusCode {
	var ce *CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return 0
}

// InvalidMessageError is why an inbound message was rejected: it was not
// valid JSON, did not match the schema of In, or came in a binary frame.
// Under InvalidYield the stream yields it; under InvalidReply its Reason is
// sent to the client.
type InvalidMessageError struct {
	// Field is the JSON Pointer (RFC 6901) of the offending value, "" when
	// the message as a whole is at fault.
	Field string
	// Reason says what is wrong, naming the field; it is safe to show the
	// client (it never echoes more than a field name and the schema).
	Reason string
	// Err is the underlying error, when there is one: a
	// *jsonschema.ValidationError of github.com/santhosh-tekuri/jsonschema/v6,
	// a JSON syntax error (io.ErrUnexpectedEOF for a truncated message), or
	// the *json.UnmarshalTypeError of a value In cannot hold. It is nil for
	// a binary frame and for the parser's own refusals (a repeated or
	// case-variant key, too deep, a number too long or out of range).
	Err error
}

// Error returns the Reason after "wsroom: invalid message: ".
func (e *InvalidMessageError) Error() string { return "wsroom: invalid message: " + e.Reason }

// Unwrap returns the underlying error.
func (e *InvalidMessageError) Unwrap() error { return e.Err }

var (
	// ErrClosed is returned by Send on a connection that is closing or closed.
	ErrClosed = errors.New("wsroom: connection closed")

	// ErrSendQueueFull is returned by Send when the connection's send queue
	// is at its bound. Under the default OverflowClose the connection is then
	// closed with StatusPolicyViolation; under OverflowDrop only the message
	// is lost.
	ErrSendQueueFull = errors.New("wsroom: send queue full")

	// ErrUnauthorized, returned (or wrapped) by a Guard, refuses the upgrade
	// with 401 Unauthorized.
	ErrUnauthorized = errors.New("wsroom: unauthorized")

	// ErrTooManyRooms is returned by Subscribe and Join when the room does
	// not exist and the registry is at its cap (WithMaxRooms).
	ErrTooManyRooms = errors.New("wsroom: too many rooms")

	// ErrForbidden, returned (or wrapped) by a Guard, refuses the upgrade with
	// 403 Forbidden.
	ErrForbidden = errors.New("wsroom: forbidden")
)

// ErrBroker is wrapped by the error Publish returns when the message
// reached the room's members in this process but the broker did not take
// it (it is down, reconnecting, or refused it): members in other processes
// may not receive it, and never will later. Nothing is wrong with the
// connection that published: a handler should tell its client, not
// return the error. Such publishes are counted in RoomsStats.BrokerErrors.
var ErrBroker = errors.New("wsroom: not delivered to other processes")

// ErrNotRecorded is wrapped by the error Publish (or Join, for the
// joiner's announcement) returns in a registry with history whose
// HistoryBroker could not record the message (it is down, reconnecting,
// or refused it): the message has no position, so it reached nobody, not
// even this process's members (unlike ErrBroker), and a retry publishes
// it anew. A joiner is in the room all the same. Nothing is wrong with the connection that
// published: tell the sender, do not end the handler. Such publishes are
// counted in RoomsStats.BrokerErrors.
var ErrNotRecorded = errors.New("wsroom: not recorded, so delivered to nobody")

// ErrPresenceFull is wrapped by the error Join returns, and the member has
// not joined, when it would be present under a key new to the room and
// the room already has as many keys present in this process as
// WithPresenceLimits allows.
var ErrPresenceFull = errors.New("wsroom: presence full")

// ErrPresenceEntryTooLarge is wrapped by the error Join returns, and the
// member has not joined, when its key, metadata and leave message
// together are over the entry bound of WithPresenceLimits.
var ErrPresenceEntryTooLarge = errors.New("wsroom: presence entry too large")
