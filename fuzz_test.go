package wsroom_test

import (
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/wsroom/wsroom/internal/wstest"
)

// FuzzConnection feeds a whole connection arbitrary bytes from a raw TCP
// client, after a real upgrade, on a server shared by every input and
// watched by a witness in the same room. With raw false the input is read
// as frames in wire format whose masked payloads the harness masks (so the
// fuzzer need not guess mask arithmetic): a header byte, a length byte
// (mask bit included) and its extended length, then the payload; with raw
// true the bytes go out as they are. After the input the client half-closes
// the socket. Whatever the input:
//   - nothing panics (a panic in the read path would be logged as a
//     handler panic);
//   - the server ends the connection within 5 s (nothing hangs), its frames
//     are valid (unmasked, no reserved bits, control frames short, text
//     valid UTF-8 JSON, nothing after the close frame) and its close code
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
	a := newArena(f, arenaOptions{noTicker: true}, chatToOut)
	f.Fuzz(func(t *testing.T, data []byte, raw bool) {
		r, _, err := wstest.RawDial(a.url, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		out := data
		if !raw {
			out = framesFromFuzz(data)
		}
		written := make(chan struct{})
		go func() {
			defer close(written)
			// The server may stop reading: that is fine, and the write
			// ends when it closes the socket.
			_ = r.Conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
			_, _ = r.Conn.Write(out)
			_ = r.CloseWrite()
		}()
		e := r.ReadToEnd(5*time.Second, 1<<20)
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
			if fr.Opcode == 0x1 && !json.Valid(fr.Payload) {
				t.Fatalf("server sent text that is not JSON: %q", fr.Payload)
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
// the input holds.
func framesFromFuzz(data []byte) []byte {
	var out []byte
	mask := [4]byte{0xA1, 0xB2, 0xC3, 0xD4}
	for len(data) >= 2 {
		b0, b1 := data[0], data[1]
		data = data[2:]
		out = append(out, b0, b1)
		n := uint64(b1 & 0x7F)
		switch n {
		case 126:
			if len(data) < 2 {
				return append(out, data...)
			}
			n = uint64(binary.BigEndian.Uint16(data))
			out, data = append(out, data[:2]...), data[2:]
		case 127:
			if len(data) < 8 {
				return append(out, data...)
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
	}
	return append(out, data...)
}
