package client

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

var (
	// ErrClosed is wrapped by the errors of Send once the Conn has ended:
	// Close was called, its context was cancelled, or a final error ended it.
	ErrClosed = errors.New("client: connection closed")

	// ErrReconnecting is wrapped by the errors of Send while the Conn has
	// no connection: it is waiting to reconnect, or dialing.
	ErrReconnecting = errors.New("client: reconnecting")
)

// UpgradeError is a refused upgrade: the server answered the upgrade
// request with Status instead of 101 Switching Protocols.
type UpgradeError struct {
	Status int
	// RetryAfter is the delay the server's Retry-After header asked for,
	// 0 if there was none.
	RetryAfter time.Duration
}

func (e *UpgradeError) Error() string {
	return fmt.Sprintf("client: upgrade refused: %d %s", e.Status, http.StatusText(e.Status))
}

// GaveUpError ends a Conn that could not reconnect within WithMaxAttempts
// attempts. Err is why the last attempt failed.
type GaveUpError struct {
	Attempts int
	Err      error
}

func (e *GaveUpError) Error() string {
	return fmt.Sprintf("client: gave up reconnecting after %d attempts: %v", e.Attempts, e.Err)
}

func (e *GaveUpError) Unwrap() error { return e.Err }

// InvalidMessageError is a received frame that could not be made a Recv:
// not a text frame, not JSON of Recv's shape, or, under WithValidation or
// WithSchema, against the schema. Messages yields it in the error slot and
// goes on with the next frame.
type InvalidMessageError struct {
	Data []byte // the frame
	Err  error
}

func (e *InvalidMessageError) Error() string {
	return fmt.Sprintf("client: invalid message %.64q: %v", e.Data, e.Err)
}

func (e *InvalidMessageError) Unwrap() error { return e.Err }
