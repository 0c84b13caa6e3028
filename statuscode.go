package wsroom

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

// validCloseCode reports whether a handler may close with code: the codes
// RFC 6455 lets an endpoint send, and the ranges for libraries and apps.
func validCloseCode(code StatusCode) bool {
	switch {
	case code == 1000, code >= 1001 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	default:
		return code >= 3000 && code <= 4999
	}
}
