package wstest

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// Raw is a WebSocket client that is only a TCP socket: it performs the
// upgrade by hand and then reads and writes bytes as the test says, so it
// can break every rule a real client keeps (and stay light enough to open
// thousands of them).
type Raw struct {
	Conn   net.Conn
	R      *bufio.Reader
	Header http.Header // the headers of the server's 101 answer
	// Deflate lets ReadFrame accept RSV1 on a message frame: set it once
	// Header shows permessage-deflate negotiated.
	Deflate bool
}

// websocketGUID is the key suffix of RFC 6455 section 1.3.
const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// RawDial opens a TCP connection to url (http:// or ws://) and completes
// the upgrade, checking the 101 answer and its Sec-WebSocket-Accept. On a
// refusal it returns the HTTP status and an error.
func RawDial(rawURL string, header http.Header) (*Raw, int, error) {
	return RawDialVia(net.Dial, rawURL, header)
}

// RawDialVia is RawDial with a chosen dial function (to spread connections
// over source or destination addresses, for instance).
func RawDialVia(dial func(network, addr string) (net.Conn, error), rawURL string, header http.Header) (*Raw, int, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, 0, err
	}
	conn, err := dial("tcp", u.Host)
	if err != nil {
		return nil, 0, err
	}
	r, status, err := RawUpgrade(conn, u.Host, u.RequestURI(), header)
	if err != nil {
		_ = conn.Close()
		return nil, status, err
	}
	return r, status, nil
}

// RawUpgrade sends an upgrade request for path over conn and reads the
// answer.
func RawUpgrade(conn net.Conn, host, path string, header http.Header) (*Raw, int, error) {
	key := base64.StdEncoding.EncodeToString([]byte("wsroom-raw-nonce"))
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n", path, host)
	fmt.Fprintf(&b, "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\n", key)
	for k, vs := range header {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	b.WriteString("\r\n")
	_ = conn.SetDeadline(time.Now().Add(Timeout))
	defer conn.SetDeadline(time.Time{})
	if _, err := io.WriteString(conn, b.String()); err != nil {
		return nil, 0, err
	}
	br := bufio.NewReaderSize(conn, 4<<10)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return nil, 0, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		_ = resp.Body.Close()
		return nil, resp.StatusCode, &Refusal{Status: resp.StatusCode, Header: resp.Header}
	}
	h := sha1.Sum([]byte(key + websocketGUID))
	if got, want := resp.Header.Get("Sec-WebSocket-Accept"), base64.StdEncoding.EncodeToString(h[:]); got != want {
		return nil, resp.StatusCode, fmt.Errorf("Sec-WebSocket-Accept %q, want %q", got, want)
	}
	return &Raw{Conn: conn, R: br, Header: resp.Header}, resp.StatusCode, nil
}

// Refusal is the error of an upgrade answered with another status than 101.
type Refusal struct {
	Status int
	Header http.Header
}

func (r *Refusal) Error() string {
	return fmt.Sprintf("upgrade refused: %d %s (Retry-After %q)", r.Status, http.StatusText(r.Status), r.Header.Get("Retry-After"))
}

// Write writes raw bytes.
func (r *Raw) Write(p []byte) error {
	_ = r.Conn.SetWriteDeadline(time.Now().Add(Timeout))
	_, err := r.Conn.Write(p)
	return err
}

// CloseWrite half-closes the socket: the server reads end of stream.
func (r *Raw) CloseWrite() error {
	if cw, ok := r.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return r.Conn.Close()
}

// Close closes the socket.
func (r *Raw) Close() error { return r.Conn.Close() }

// Vanish closes the socket with a reset and no close frame, as a peer that
// crashed.
func (r *Raw) Vanish() error {
	if tc, ok := r.Conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	return r.Conn.Close()
}

// ServerFrame is a frame read from the server.
type ServerFrame struct {
	Fin     bool
	RSV     byte // the three reserved bits, as bits 6..4 of the first byte
	Opcode  byte
	Masked  bool
	Payload []byte
}

// CloseCode returns the code and reason of a close frame (1005 when it
// carries none).
func (f ServerFrame) CloseCode() (uint16, string) {
	if len(f.Payload) < 2 {
		return 1005, ""
	}
	return binary.BigEndian.Uint16(f.Payload), string(f.Payload[2:])
}

// ErrBadServerFrame reports a frame the server should never send.
var ErrBadServerFrame = errors.New("malformed server frame")

// ReadFrame reads one frame from the server, refusing payloads over max
// bytes. It checks what RFC 6455 requires of a server's frame: no mask, no
// reserved bits (but RSV1 on a message with Deflate), a known opcode,
// control frames final and at most 125 bytes, text and close reasons
// valid UTF-8 (text is checked per frame, if not compressed: the server
// never fragments).
func (r *Raw) ReadFrame(max int) (ServerFrame, error) {
	var h [2]byte
	if _, err := io.ReadFull(r.R, h[:]); err != nil {
		return ServerFrame{}, err
	}
	f := ServerFrame{Fin: h[0]&0x80 != 0, RSV: h[0] & 0x70, Opcode: h[0] & 0x0F, Masked: h[1]&0x80 != 0}
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		var ext [2]byte
		if _, err := io.ReadFull(r.R, ext[:]); err != nil {
			return f, err
		}
		n = uint64(binary.BigEndian.Uint16(ext[:]))
	case 127:
		var ext [8]byte
		if _, err := io.ReadFull(r.R, ext[:]); err != nil {
			return f, err
		}
		n = binary.BigEndian.Uint64(ext[:])
	}
	switch {
	case f.Masked:
		return f, fmt.Errorf("%w: masked", ErrBadServerFrame)
	case f.RSV != 0 && !(r.Deflate && f.RSV == 0x40 && (f.Opcode == 0x1 || f.Opcode == 0x2)):
		return f, fmt.Errorf("%w: reserved bits %#x", ErrBadServerFrame, f.RSV)
	case f.Opcode >= 0x8 && (!f.Fin || n > 125):
		return f, fmt.Errorf("%w: control frame fin=%v length %d", ErrBadServerFrame, f.Fin, n)
	case f.Opcode != 0x1 && f.Opcode != 0x2 && f.Opcode != 0x8 && f.Opcode != 0x9 && f.Opcode != 0xA:
		return f, fmt.Errorf("%w: opcode %#x", ErrBadServerFrame, f.Opcode)
	case n > uint64(max):
		return f, fmt.Errorf("%w: %d bytes, more than the %d expected", ErrBadServerFrame, n, max)
	}
	f.Payload = make([]byte, n)
	if _, err := io.ReadFull(r.R, f.Payload); err != nil {
		return f, err
	}
	switch f.Opcode {
	case 0x1:
		if !f.Fin || (f.RSV == 0 && !utf8.Valid(f.Payload)) {
			return f, fmt.Errorf("%w: text frame fin=%v, valid UTF-8 %v", ErrBadServerFrame, f.Fin, utf8.Valid(f.Payload))
		}
	case 0x8:
		if len(f.Payload) == 1 || !utf8.Valid(f.Payload[min(2, len(f.Payload)):]) {
			return f, fmt.Errorf("%w: close payload %q", ErrBadServerFrame, f.Payload)
		}
	}
	return f, nil
}

// Ending is how a server ended a raw connection.
type Ending struct {
	Frames   []ServerFrame // every frame before the end, the close frame included
	Closed   bool          // a close frame came
	Code     uint16        // its code
	Reason   string        // its reason
	AfterEOF bool          // the socket reached end of stream (or was reset) after the frames
	Err      error         // a malformed frame, bytes after the close frame, or the deadline
}

// ReadToEnd reads frames until the server closes the socket or d passes,
// and checks that nothing follows the close frame. It replies to nothing.
func (r *Raw) ReadToEnd(d time.Duration, max int) Ending {
	var e Ending
	_ = r.Conn.SetReadDeadline(time.Now().Add(d))
	defer r.Conn.SetReadDeadline(time.Time{})
	for {
		f, err := r.ReadFrame(max)
		if err != nil {
			var ne net.Error
			switch {
			case errors.Is(err, ErrBadServerFrame):
				e.Err = err
			case errors.As(err, &ne) && ne.Timeout():
				e.Err = fmt.Errorf("the server did not close the connection within %v", d)
			case err == io.EOF || errors.Is(err, net.ErrClosed) || isReset(err):
				e.AfterEOF = true
			case err == io.ErrUnexpectedEOF:
				e.Err = errors.New("the server's stream ended inside a frame")
			default:
				e.AfterEOF = true // a reset counts as the end
			}
			return e
		}
		if e.Closed {
			e.Err = fmt.Errorf("frame with opcode %#x after the close frame", f.Opcode)
			return e
		}
		e.Frames = append(e.Frames, f)
		if f.Opcode == 0x8 {
			e.Closed = true
			e.Code, e.Reason = f.CloseCode()
		}
	}
}

func isReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe"))
}

// UnmaskedFrame returns a client frame without a mask, which a server must
// refuse.
func UnmaskedFrame(fin bool, opcode byte, payload []byte) []byte {
	return append(frameHeader(fin, opcode, uint64(len(payload)), 0), payload...)
}

// FrameHeader returns only the header of a masked client frame announcing
// n payload bytes: the payload is for the caller to send, or not.
func FrameHeader(fin bool, opcode byte, n uint64) []byte {
	return append(frameHeader(fin, opcode, n, 0x80), frameMask[:]...)
}

// Mask masks payload bytes that follow a FrameHeader, starting at offset
// off into the payload.
func Mask(payload []byte, off int) []byte {
	out := make([]byte, len(payload))
	for i, b := range payload {
		out[i] = b ^ frameMask[(off+i)%4]
	}
	return out
}
