package wsroom

import (
	"errors"
	"fmt"
)

// StatusCode is a WebSocket close code (RFC 6455 section 7.4).
type StatusCode uint16

// The close codes wsroom sends, and the ones a handler most often needs.
// The README has the table of which event sends which code.
const (
	StatusNormalClosure   StatusCode = 1000 // handler returned nil, or Close was called
	StatusGoingAway       StatusCode = 1001 // Shutdown, or the peer went silent past the idle timeout
	StatusProtocolError   StatusCode = 1002 // the peer broke the WebSocket protocol
	StatusNoStatus        StatusCode = 1005 // the peer's close frame carried no code (never sent)
	StatusInvalidPayload  StatusCode = 1007 // invalid UTF-8, or invalid input under InvalidClose
	StatusPolicyViolation StatusCode = 1008 // slow consumer (queue overflow or write timeout), or past the rate limit
	StatusMessageTooBig   StatusCode = 1009 // an inbound message exceeded the read limit
	StatusInternalError   StatusCode = 1011 // the handler panicked or returned an error
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
