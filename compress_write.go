package wsroom

import (
	"bytes"
	"sync"
	"sync/atomic"
	"unsafe"
	"weak"

	"github.com/klauspost/compress/flate"
)

// Compressing once per publish. A room hands the same plain frame to every
// member's enqueue; a member that negotiated permessage-deflate swaps it for
// the frame's compressed twin, which the first such member makes and the
// others find in twins. Compression with a fresh dictionary is
// deterministic, so a twin made twice (two publishes whose frames share a
// slot, or a twin collected while a publish was still going round) has the
// same bytes: every compressing member gets the same frame. The cache holds
// both frames weakly: it keeps nothing alive that the queues do not.

// twin is a plain frame's compressed counterpart.
type twin struct {
	plain    weak.Pointer[byte] // the plain frame's first byte: its identity
	size     int                // the plain frame's length
	deflated weak.Pointer[byte] // the compressed frame's first byte, or the plain one's: compressing did not pay
	dsize    int
}

// twins are the recent twins, in slots chosen by the plain frame's address.
var twins [64]atomic.Pointer[twin]

// deflated returns the frame c, which negotiated compression, is to be
// sent for frame, and the bytes that saves: frame's compressed twin if
// frame is a message at least as large as the threshold and compressing it
// saves bytes; frame itself otherwise.
func (c *conn) deflated(frame []byte) ([]byte, int) {
	if frame[0] != 0x80|opText || len(framePayload(frame)) < c.cfg.compressMin {
		return frame, 0
	}
	first := unsafe.SliceData(frame)
	slot := &twins[uint64(uintptr(unsafe.Pointer(first)))*0x9E3779B97F4A7C15>>58]
	var out []byte
	if t := slot.Load(); t != nil && t.size == len(frame) && t.plain.Value() == first {
		if d := t.deflated.Value(); d != nil {
			out = unsafe.Slice(d, t.dsize)
		}
	}
	if out == nil {
		out = deflateFrame(frame)
		slot.Store(&twin{plain: weak.Make(first), size: len(frame), deflated: weak.Make(unsafe.SliceData(out)), dsize: len(out)})
	}
	return out, len(frame) - len(out)
}

// countCompressed moves the counts of the frames queued compressed to the
// endpoint's stats: once per batch written, by the writer, not once per
// frame by the publisher, whose atomic adds would contend with the
// writers' on another core. c.mu must be held.
func (c *conn) countCompressed() {
	c.stats.compressed.Add(int64(c.compressedQueued))
	c.stats.compressionSaved.Add(int64(c.savedQueued))
	c.compressedQueued, c.savedQueued = 0, 0
}

// deflateFrame returns frame's message compressed in one final frame with
// RSV1 set, or frame itself if that is not smaller.
func deflateFrame(frame []byte) []byte {
	payload := framePayload(frame)
	d := deflaters.Get().(*deflater)
	d.buf.Reset()
	d.w.Reset(&d.buf)
	_, _ = d.w.Write(payload) // a bytes.Buffer does not fail
	_ = d.w.Flush()
	// RFC 7692 section 7.2.1: the empty stored block Flush ends with, 00 00
	// FF FF, is left out of the frame.
	out := d.buf.Bytes()
	out = out[:len(out)-4]
	var f []byte
	if h := headerLen(len(out)); h+len(out) < len(frame) {
		f = make([]byte, h+len(out))
		putHeader(f[:h], frame[0]&0x0F, len(out))
		f[0] |= rsv1
		copy(f[h:], out)
	} else {
		f = frame
	}
	d.release()
	return f
}

// rsv1 is the frame header bit that marks a compressed message.
const rsv1 = 0x40

// deflater is a pooled compressor and its output buffer: compressing holds
// one only for the length of a call, never per connection.
type deflater struct {
	w   *flate.Writer
	buf bytes.Buffer
}

var deflaters = sync.Pool{New: func() any {
	w, _ := flate.NewWriter(nil, flate.BestSpeed) // BestSpeed is a valid level: no error
	return &deflater{w: w}
}}

// release gives d back, unless one huge message grew its buffer.
func (d *deflater) release() {
	if d.buf.Cap() > maxPooledEncoderBuffer {
		d.buf = bytes.Buffer{}
	}
	deflaters.Put(d)
}
