package wsroom

import (
	"bytes"
	"errors"
	"io"
	"sync"
	"unicode/utf8"

	"github.com/klauspost/compress/flate"
)

// Compressed messages from the client. gws, which reads the frames, is not
// told about the extension: at each message boundary, where the reader
// looks at the next frame before gws does (awaitInput), the first frame of
// a compressed message has its RSV1 bit taken off and its opcode made
// binary, so that gws assembles it as it would any binary message, without
// checking the compressed bytes as UTF-8. Everything else keeps the rules
// gws enforces without the extension: RSV1 on a continuation or a control
// frame, or on any frame of a connection that did not negotiate it, closes
// with 1002. The reader inflates the assembled message under the read
// limit, which so applies to the inflated size, and checks a text
// message's UTF-8 itself.

// markCompressed takes the RSV1 bit off the first frame of a compressed
// message, first being the frame's first byte where it lies buffered, and
// remembers the message's opcode. c.readMu must be held.
func (c *conn) markCompressed(first *byte) {
	c.inflateOp = 0
	if !c.deflate {
		return
	}
	if op := *first & 0x0F; *first&rsv1 != 0 && (op == opText || op == opBinary) {
		c.inflateOp = op
		*first = *first&^(rsv1|0x0F) | opBinary
	}
}

// firstBuffered returns the first byte read and not yet taken by gws, or
// nil if there is none.
func (c *conn) firstBuffered() *byte {
	if buffered, _ := c.br.Peek(c.br.Buffered()); len(buffered) > 0 {
		return &buffered[0]
	}
	if pending := c.in.pending(); len(pending) > 0 {
		return &pending[0]
	}
	return nil
}

// inflateErrors are why a compressed message could not be inflated.
var (
	errInflatedTooBig = errors.New("wsroom: inflated message over the read limit")
	errBadDeflate     = errors.New("wsroom: invalid compressed data")
)

// inflate returns the message compressed in data, at most limit bytes of
// it, in a pooled buffer to give back with releaseInflated. data must have
// room for deflateTail after its length (gws's buffers do).
func inflate(data []byte, limit int) (*bytes.Buffer, error) {
	f := inflaters.Get().(*inflater)
	defer inflaters.Put(f)
	f.src.Reset(append(data, deflateTail...))
	if err := f.r.(flate.Resetter).Reset(&f.src, nil); err != nil {
		return nil, errBadDeflate
	}
	out := inflatedBuffers.Get().(*bytes.Buffer)
	out.Reset()
	f.lim = io.LimitedReader{R: f.r, N: int64(limit) + 1}
	_, err := out.ReadFrom(&f.lim)
	switch {
	case err != nil:
		releaseInflated(out)
		return nil, errBadDeflate
	case out.Len() > limit:
		releaseInflated(out)
		return nil, errInflatedTooBig
	}
	return out, nil
}

// deflateTail ends what a client sent: the empty stored block the sender
// left out (RFC 7692 section 7.2.2), then a final empty block, so the
// inflater finds a clean end.
var deflateTail = []byte{0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff}

// inflater is a pooled decompressor: like deflater, held only during a
// call.
type inflater struct {
	r   io.ReadCloser
	src bytes.Reader
	lim io.LimitedReader
}

var inflaters = sync.Pool{New: func() any { return &inflater{r: flate.NewReader(bytes.NewReader(nil))} }}

var inflatedBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// releaseInflated gives an inflated message's buffer back, unless one huge
// message grew it.
func releaseInflated(b *bytes.Buffer) {
	if b.Cap() <= maxPooledEncoderBuffer {
		inflatedBuffers.Put(b)
	}
}

// inflated returns the payload of msg, a compressed message with opcode op,
// inflated in a buffer to give back with releaseInflated; or, if it cannot
// be, starts closing c as RFC 7692 and 6455 ask and returns nil: 1009 past
// the read limit, 1007 for a stream that is not valid deflate or text that
// is not UTF-8.
func (c *conn) inflated(data []byte, op byte) *bytes.Buffer {
	out, err := inflate(data, c.cfg.readLimit)
	switch {
	case errors.Is(err, errInflatedTooBig):
		c.closeProtocol(StatusMessageTooBig, "message too big")
	case err != nil:
		c.closeProtocol(StatusInvalidPayload, "invalid compressed data")
	case op == opText && !utf8.Valid(out.Bytes()):
		releaseInflated(out)
		c.closeProtocol(StatusInvalidPayload, "invalid UTF-8")
	default:
		return out
	}
	return nil
}

// closeProtocol closes, after the queued frames, a peer that sent what the
// protocol forbids.
func (c *conn) closeProtocol(code StatusCode, reason string) {
	c.startClose(closeRequest{by: closedByServer, code: code, reason: reason})
}
