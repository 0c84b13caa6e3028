package wsroom_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/flate"
	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/wstest"
)

// FuzzConnection feeds a whole connection arbitrary bytes from a raw TCP
// client, after a real upgrade, on a server shared by every input and
// watched by a witness in the same room. With raw false the input is read
// as frames in wire format whose masked payloads the harness masks (so the
// fuzzer need not guess mask arithmetic): a header byte, a length byte
// (mask bit included) and its extended length, then the payload; with raw
// true the bytes go out as they are. With deflate true the client offers
// permessage-deflate, as browsers do, to a second server that enables it
// (WithCompression(1), a read limit of fuzzDeflateReadLimit), so that its
// frames may set RSV1 and carry deflate streams: valid, corrupt, misplaced
// and bombs. After the input the client half-closes the socket. Whatever
// the input:
//   - nothing panics (a panic in the read path would be logged as a
//     handler panic);
//   - the server ends the connection within 5 s (nothing hangs), its frames
//     are valid (unmasked, no reserved bits, control frames short, text
//     valid UTF-8 JSON once inflated if compressed, RSV1 only where the
//     extension was negotiated, nothing after the close frame) and its close code
//     is one a server may send;
//   - the connection is forgotten (Stats.Connections back to the witness
//     alone);
//   - the witness received everything published to its room, in order.
//
// Seeds are in testdata/fuzz/FuzzConnection. Run the fuzzer with
//
//	go test -run '^$' -fuzz '^FuzzConnection$' -fuzztime 10s .
func FuzzConnection(f *testing.F) {
	if !fuzzing() {
		// The fuzzing engine runs goroutines of its own (signal
		// handling): count only when the seeds run as a plain test.
		wstest.CheckGoroutines(f)
	}
	plain := newArena(f, arenaOptions{noTicker: true}, chatToOut)
	zipped := newArena(f, arenaOptions{noTicker: true}, chatToOut,
		wsroom.WithReadLimit(fuzzDeflateReadLimit), wsroom.WithCompression(1))
	f.Fuzz(func(t *testing.T, data []byte, raw, deflate bool) {
		a, h := plain, http.Header(nil)
		if deflate {
			a, h = zipped, http.Header{"Sec-Websocket-Extensions": {"permessage-deflate; client_max_window_bits"}}
		}
		r, _, err := wstest.RawDial(a.url, h)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if r.Deflate = r.Header.Get("Sec-WebSocket-Extensions") != ""; r.Deflate != deflate {
			t.Fatalf("permessage-deflate negotiated %v, offered %v", r.Deflate, deflate)
		}
		out, whole := data, false
		if !raw {
			out, whole = framesFromFuzz(data)
		}
		// After whole frames, a ping: its pong says the server has read
		// the input, so the frames it sends in answer (compressed ones
		// among them) come before the half-close ends the connection.
		answered := make(chan struct{})
		if whole {
			out = append(out, wstest.Frame(true, 0x9, fuzzEnd)...)
		} else {
			close(answered)
		}
		written := make(chan struct{})
		go func() {
			defer close(written)
			// The server may stop reading: that is fine, and the write
			// ends when it closes the socket.
			_ = r.Conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
			_, _ = r.Conn.Write(out)
			<-answered
			_ = r.CloseWrite()
		}()
		e := readEnding(r, 5*time.Second, answered)
		if e.Err != nil {
			stacks := libraryStacks()
			r.Close()
			<-written
			t.Fatalf("server: %v (after %d frames, %s)\n%s", e.Err, len(e.Frames), frameSummary(e.Frames), stacks)
		}
		<-written
		if e.Closed && !serverMaySend(e.Code) {
			t.Fatalf("server closed with code %d %q", e.Code, e.Reason)
		}
		for _, fr := range e.Frames {
			if fr.Opcode != 0x1 {
				continue
			}
			if p, err := inflatedPayload(fr); err != nil || !json.Valid(p) {
				t.Fatalf("server sent text that is not JSON (compressed %v, %v): %q", fr.RSV != 0, err, p)
			}
		}
		r.Close()
		// The witness first: once it is gone, nothing else can be judged
		// (and the endpoint never gets back to one connection).
		witnessErrs := func() []string {
			a.w.mu.Lock()
			defer a.w.mu.Unlock()
			return a.w.errs
		}
		pollFor(t, "the connection forgotten", func() bool {
			return len(witnessErrs()) > 0 || a.stats().Connections == 1
		})
		published := a.published.Load()
		pollFor(t, "the witness to have everything", func() bool {
			return len(witnessErrs()) > 0 || a.w.received.Load() >= published
		})
		if errs := witnessErrs(); len(errs) > 0 {
			t.Fatalf("witness: %v", errs)
		}
		if n := a.logs.panics.Load(); n > 0 {
			t.Fatalf("panic: %s", a.logs.text())
		}
	})
}

// fuzzEnd is the payload of the ping that follows the fuzzer's frames.
var fuzzEnd = []byte("wsroom-fuzz-end")

// readEnding reads the server's frames until it closes the socket or d
// passes, as ReadToEnd does, and closes answered once the pong of fuzzEnd
// has come or the server has closed (the pong is not among the frames).
func readEnding(r *wstest.Raw, d time.Duration, answered chan struct{}) wstest.Ending {
	var e wstest.Ending
	answer := func() {
		select {
		case <-answered:
		default:
			close(answered)
		}
	}
	defer answer()
	_ = r.Conn.SetReadDeadline(time.Now().Add(d))
	defer r.Conn.SetReadDeadline(time.Time{})
	for {
		f, err := r.ReadFrame(1 << 20)
		var ne net.Error
		switch {
		case err == nil:
		case errors.Is(err, wstest.ErrBadServerFrame):
			e.Err = err
			return e
		case errors.As(err, &ne) && ne.Timeout():
			e.Err = fmt.Errorf("the server did not close the connection within %v", d)
			return e
		case errors.Is(err, io.ErrUnexpectedEOF):
			e.Err = errors.New("the server's stream ended inside a frame")
			return e
		default: // end of stream, or a reset
			e.AfterEOF = true
			return e
		}
		switch {
		case e.Closed:
			e.Err = fmt.Errorf("frame with opcode %#x after the close frame", f.Opcode)
			return e
		case f.Opcode == 0xA && bytes.Equal(f.Payload, fuzzEnd):
			answer()
			continue
		case f.Opcode == 0x8:
			e.Closed = true
			e.Code, e.Reason = f.CloseCode()
			answer()
		}
		e.Frames = append(e.Frames, f)
	}
}

// fuzzDeflateReadLimit is the read limit of the server with compression:
// small, so that a bomb costs the fuzzer little to inflate.
const fuzzDeflateReadLimit = 64 << 10

// inflatedPayload returns a server frame's payload, inflated if the frame
// is compressed (RSV1; ReadFrame allows it only where negotiated).
func inflatedPayload(f wstest.ServerFrame) ([]byte, error) {
	if f.RSV == 0 {
		return f.Payload, nil
	}
	tail := []byte{0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff}
	return io.ReadAll(flate.NewReader(io.MultiReader(bytes.NewReader(f.Payload), bytes.NewReader(tail))))
}

// libraryStacks returns the stacks of the goroutines inside wsroom or gws,
// to show where a connection that does not end is stuck.
func libraryStacks() string {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "wsroom/wsroom.") || strings.Contains(g, "lxzan/gws") {
			out = append(out, g)
		}
	}
	s := strings.Join(out, "\n\n")
	if len(s) > 16<<10 {
		s = s[:16<<10] + "\n..."
	}
	return s
}

// frameSummary counts the frames by opcode.
func frameSummary(frames []wstest.ServerFrame) string {
	n := map[byte]int{}
	for _, f := range frames {
		n[f.Opcode]++
	}
	return fmt.Sprintf("text %d, ping %d, pong %d, close %d", n[1], n[9], n[10], n[8])
}

// fuzzing reports whether the test binary runs with -fuzz.
func fuzzing() bool {
	fl := flag.Lookup("test.fuzz")
	return fl != nil && fl.Value.String() != ""
}

// serverMaySend reports whether a server may close with code (1005 stands
// for a close frame without a code, the answer to one).
func serverMaySend(code uint16) bool {
	switch {
	case code >= 1000 && code <= 1003, code == 1005, code >= 1007 && code <= 1011, code == 1013:
		return true
	}
	return code >= 3000 && code <= 4999 // the peer's own code, echoed
}

// pollFor polls cond often (a fuzzer runs it thousands of times), failing
// after 5 s (the fuzzing engine takes an input that runs 10 s for a hang).
func pollFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.Gosched()
		time.Sleep(100 * time.Microsecond)
	}
}

// framesFromFuzz turns the fuzzer's bytes into frames in wire format: each
// record is a header byte, a length byte (bit 7: masked), 0, 2 or 8 bytes
// of extended length, then up to that many payload bytes, which are masked
// here when the mask bit is set. A record may announce more payload than
// the input holds. whole reports that the bytes are whole frames, none of
// them cut short.
func framesFromFuzz(data []byte) (out []byte, whole bool) {
	mask := [4]byte{0xA1, 0xB2, 0xC3, 0xD4}
	for len(data) >= 2 {
		b0, b1 := data[0], data[1]
		data = data[2:]
		out = append(out, b0, b1)
		n := uint64(b1 & 0x7F)
		switch n {
		case 126:
			if len(data) < 2 {
				return append(out, data...), false
			}
			n = uint64(binary.BigEndian.Uint16(data))
			out, data = append(out, data[:2]...), data[2:]
		case 127:
			if len(data) < 8 {
				return append(out, data...), false
			}
			n = binary.BigEndian.Uint64(data)
			out, data = append(out, data[:8]...), data[8:]
		}
		p := data[:min(n, uint64(len(data)))]
		data = data[len(p):]
		if b1&0x80 != 0 {
			out = append(out, mask[:]...)
			for i, b := range p {
				out = append(out, b^mask[i%4])
			}
		} else {
			out = append(out, p...)
		}
		if uint64(len(p)) < n {
			return out, false
		}
	}
	return append(out, data...), len(data) == 0
}
