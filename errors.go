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
