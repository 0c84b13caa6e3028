package redisbroker

// The envelope of every message a Broker publishes:
//
//	"wsr1:" origin ":" payload
//
// where origin is the publishing Broker's id, 16 lowercase hexadecimal
// digits drawn at random by New, and payload is the bytes given to
// Publish, unchanged. The header is 22 bytes; "wsr1" names the format and
// its version, and cannot begin a JSON text, so a plain client's JSON is
// never taken for an envelope.
const (
	magic     = "wsr1:"
	originLen = 16
	headerLen = len(magic) + originLen + 1
)

// appendEnvelope appends the envelope of payload from origin to dst.
func appendEnvelope(dst []byte, origin string, payload []byte) []byte {
	dst = append(dst, magic...)
	dst = append(dst, origin...)
	dst = append(dst, ':')
	return append(dst, payload...)
}

// openEnvelope splits a received message into its origin and payload, and
// reports whether it is a well-formed envelope.
func openEnvelope(msg string) (origin, payload string, ok bool) {
	if len(msg) < headerLen || msg[:len(magic)] != magic || msg[headerLen-1] != ':' {
		return "", "", false
	}
	origin = msg[len(magic) : headerLen-1]
	for i := range len(origin) {
		if c := origin[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return "", "", false
		}
	}
	return origin, msg[headerLen:], true
}
