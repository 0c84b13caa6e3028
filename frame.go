package wsroom

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"strings"
	"sync"
	"unicode/utf8"
)

// Opcodes of the frames wsroom writes and reads (RFC 6455 section 5.2).
const (
	opText   byte = 0x1
	opBinary byte = 0x2
	opClose  byte = 0x8
	opPing   byte = 0x9
	opPong   byte = 0xA
)

// maxControlPayload is the largest payload a control frame may carry.
const maxControlPayload = 125

// pingFrame is the server's heartbeat: a ping with an empty payload.
var pingFrame = []byte{0x80 | opPing, 0}

// headerLen is the size of the header of an unmasked server frame whose
// payload is n bytes long.
func headerLen(n int) int {
	switch {
	case n < 126:
		return 2
	case n <= 0xFFFF:
		return 4
	default:
		return 10
	}
}

// putHeader writes the header of a final, unmasked frame into dst, which
// must be exactly headerLen(n) bytes long.
func putHeader(dst []byte, opcode byte, n int) {
	dst[0] = 0x80 | opcode
	switch len(dst) {
	case 2:
		dst[1] = byte(n)
	case 4:
		dst[1] = 126
		binary.BigEndian.PutUint16(dst[2:], uint16(n))
	default:
		dst[1] = 127
		binary.BigEndian.PutUint64(dst[2:], uint64(n))
	}
}

// newFrame returns a complete server frame carrying payload.
func newFrame(opcode byte, payload []byte) []byte {
	h := headerLen(len(payload))
	f := make([]byte, h+len(payload))
	putHeader(f[:h], opcode, len(payload))
	copy(f[h:], payload)
	return f
}

// framePayload returns the payload of a frame built by newFrame.
func framePayload(frame []byte) []byte {
	switch frame[1] {
	case 126:
		return frame[4:]
	case 127:
		return frame[10:]
	default:
		return frame[2:]
	}
}

// closeFrame returns a close frame carrying code and reason, the reason cut
// to fit a control frame on a UTF-8 boundary.
func closeFrame(code StatusCode, reason string) []byte {
	reason = strings.ToValidUTF8(reason, "")
	if len(reason) > maxControlPayload-2 {
		reason = reason[:maxControlPayload-2]
		for len(reason) > 0 && !utf8.ValidString(reason) {
			reason = reason[:len(reason)-1]
		}
	}
	p := make([]byte, 2, 2+len(reason))
	binary.BigEndian.PutUint16(p, uint16(code))
	return newFrame(opClose, append(p, reason...))
}

// encoder is a reusable JSON encoder writing into its own buffer.
type encoder struct {
	buf bytes.Buffer
	enc *json.Encoder
}

var encoders = sync.Pool{New: func() any {
	e := new(encoder)
	e.enc = json.NewEncoder(&e.buf)
	e.enc.SetEscapeHTML(false)
	return e
}}

// encodeFrame encodes v as JSON once and returns it framed as a text frame,
// ready to be handed unchanged to any number of connections.
func encodeFrame(v any) ([]byte, error) {
	e, payload, err := encodeJSON(v)
	var frame []byte
	if err == nil {
		frame = newFrame(opText, payload)
	}
	e.release()
	return frame, err
}

// encodeJSON encodes v with a pooled encoder. The bytes are valid until
// e.release().
func encodeJSON(v any) (e *encoder, payload []byte, err error) {
	e = encoders.Get().(*encoder)
	e.buf.Reset()
	if err = e.enc.Encode(v); err != nil {
		return e, nil, err
	}
	payload = e.buf.Bytes()
	return e, payload[:len(payload)-1], nil // drop Encode's newline
}

// release gives e back to the pool, unless one huge message grew it.
func (e *encoder) release() {
	if e.buf.Cap() <= maxPooledEncoderBuffer {
		encoders.Put(e)
	}
}

// maxPooledEncoderBuffer keeps one huge message from pinning its buffer in
// the pool.
const maxPooledEncoderBuffer = 64 << 10
