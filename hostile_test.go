package wsroom_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/flate"
	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/wstest"
)

// The attack suite: hostile and broken clients, each over real sockets,
// each next to a witness that must keep receiving everything (see
// arena_test.go). Here are the attacks on the server as a whole; an attack
// on one mechanism is tested with it: the slow consumer in write_test.go,
// floods in ratelimit_test.go, the caps in server_test.go and
// room_test.go, hostile JSON in hostile_json_test.go.

// TestHostileHandshakesSlowlorisSilentAndMalformed: clients that never
// finish the upgrade request (slowloris: a header byte every 50 ms), that
// open the socket and say nothing, and that send malformed upgrades. The
// first two are net/http's to drop (ReadHeaderTimeout, as SECURITY.md
// asks); the endpoint must never count them, and a malformed upgrade must
// not keep the place it was admitted to under WithMaxConnections.
func TestHostileHandshakesSlowlorisSilentAndMalformed(t *testing.T) {
	wstest.CheckGoroutines(t)
	const headerTimeout = 300 * time.Millisecond
	a := newArena(t, arenaOptions{readHeaderTimeout: headerTimeout}, chatToOut, wsroom.WithMaxConnections(4))
	host := strings.TrimPrefix(a.srv.URL, "http://")

	const slowloris, silent = 40, 40
	var wg sync.WaitGroup
	var mu sync.Mutex
	var worst time.Duration
	var failures []string
	hold := func(drip bool) {
		defer wg.Done()
		conn, err := net.Dial("tcp", host)
		if err != nil {
			mu.Lock()
			failures = append(failures, err.Error())
			mu.Unlock()
			return
		}
		defer conn.Close()
		start := time.Now()
		ended := make(chan struct{})
		go func() {
			defer close(ended)
			_ = conn.SetReadDeadline(time.Now().Add(wstest.Timeout))
			_, _ = io.Copy(io.Discard, conn) // until the server hangs up
		}()
		if drip {
			req := "GET /ws/lobby HTTP/1.1\r\nHost: " + host + "\r\nX-Drip: " + strings.Repeat("a", 1000)
			for i := 0; i < len(req); i++ {
				if _, err := conn.Write([]byte{req[i]}); err != nil {
					break
				}
				select {
				case <-ended:
				case <-time.After(50 * time.Millisecond):
					continue
				}
				break
			}
		}
		<-ended
		took := time.Since(start)
		mu.Lock()
		worst = max(worst, took)
		if took > headerTimeout+2*time.Second {
			failures = append(failures, fmt.Sprintf("held for %v", took))
		}
		mu.Unlock()
	}
	for range slowloris {
		wg.Add(1)
		go hold(true)
	}
	for range silent {
		wg.Add(1)
		go hold(false)
	}

	// Malformed upgrades, while those hang on.
	malformed := []struct {
		name, request string
		status        int
	}{
		{"no key", "GET /ws/lobby HTTP/1.1\r\nHost: " + host + "\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n", 400},
		{"version 8", "GET /ws/lobby HTTP/1.1\r\nHost: " + host + "\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", 400},
		{"not an upgrade", "GET /ws/lobby HTTP/1.1\r\nHost: " + host + "\r\n\r\n", 426},
		{"h2c", "GET /ws/lobby HTTP/1.1\r\nHost: " + host + "\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n", 426},
		{"cross-origin", "GET /ws/lobby HTTP/1.1\r\nHost: " + host + "\r\nOrigin: https://evil.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", 403},
		{"POST", "POST /ws/lobby HTTP/1.1\r\nHost: " + host + "\r\nContent-Length: 0\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", 405},
	}
	const rounds = 10
	for range rounds {
		for _, m := range malformed {
			conn, err := net.Dial("tcp", host)
			if err != nil {
				t.Fatal(err)
			}
			_ = conn.SetDeadline(time.Now().Add(wstest.Timeout))
			if _, err := io.WriteString(conn, m.request); err != nil {
				t.Fatal(err)
			}
			status := 0
			var line string
			if _, err := fmt.Fscanf(conn, "HTTP/1.1 %d", &status); err != nil {
				line = err.Error()
			}
			conn.Close()
			if status != m.status {
				t.Fatalf("%s: status %d (%s), want %d", m.name, status, line, m.status)
			}
		}
	}
	wg.Wait()
	for _, f := range failures {
		t.Error("slowloris or silent socket: " + f)
	}

	// None of it reached the endpoint, and no place under the cap of 4
	// leaked: the witness and three more fit, a fifth is refused.
	if s := a.stats(); s.Accepted != 1 || s.Refused != 0 || s.Connections != 1 {
		t.Fatalf("stats %+v: want only the witness accepted", s)
	}
	var more []*wstest.Raw
	for range 3 {
		r, status, err := wstest.RawDial(a.url, nil)
		if err != nil {
			t.Fatalf("a good client after the hostile ones: status %d: %v", status, err)
		}
		more = append(more, r)
	}
	if _, status, _ := wstest.RawDial(a.url, nil); status != http.StatusServiceUnavailable {
		t.Fatalf("fifth connection under a cap of 4: status %d, want 503", status)
	}
	for _, r := range more {
		closeRaw(t, r)
	}
	a.finish()
	t.Logf("hostile: %d slowloris + %d silent sockets dropped by ReadHeaderTimeout %v (longest held %v); %d malformed upgrades refused; 0 admission places leaked",
		slowloris, silent, headerTimeout, worst.Round(time.Millisecond), rounds*len(malformed))
}

// closeRaw closes a raw client politely and checks the server's close.
func closeRaw(t *testing.T, r *wstest.Raw) {
	t.Helper()
	if err := r.Write(wstest.Frame(true, 0x8, []byte{0x03, 0xE8})); err != nil {
		t.Fatal(err)
	}
	if e := r.ReadToEnd(wstest.Timeout, 1<<20); e.Err != nil || e.Code != 1000 {
		t.Fatalf("closing: code %d, %v", e.Code, e.Err)
	}
	r.Close()
}

// TestHostileDeadPeersAreReclaimed: peers that vanish without a close
// frame. Those whose sockets end (reset, or FIN) are reclaimed at once;
// those that simply go silent (a network partition), and one that
// dribbles a frame a byte at a time, are reclaimed by the idle timeout.
func TestHostileDeadPeersAreReclaimed(t *testing.T) {
	skipIfShort(t, "arena")
	wstest.CheckGoroutines(t)
	// The witness lives under the same heartbeat: the idle timeout leaves
	// it a second to answer a ping on a loaded machine.
	const interval, idle = 100 * time.Millisecond, time.Second
	a := newArena(t, arenaOptions{}, chatToOut, wsroom.WithHeartbeat(interval, idle))
	const silent, reset, fin, dribblers = 30, 30, 30, 10
	lobby := a.rooms.Room("lobby")
	silentOnes := make([]*wstest.Raw, silent+reset+fin+dribblers)
	total := len(silentOnes)
	var dials sync.WaitGroup
	for i := range silentOnes {
		dials.Add(1)
		go func() {
			defer dials.Done()
			r, _, err := wstest.RawDial(a.url, nil)
			if err != nil {
				t.Error(err)
				return
			}
			silentOnes[i] = r
		}()
	}
	dials.Wait()
	if t.Failed() {
		t.FailNow()
	}
	start := time.Now()
	for _, r := range silentOnes[silent : silent+reset] {
		r.Vanish()
	}
	for _, r := range silentOnes[silent+reset : silent+reset+fin] {
		r.Close()
	}
	dribbling := silentOnes[silent+reset+fin:]
	var wg sync.WaitGroup
	for _, r := range dribbling {
		wg.Add(1)
		go func() {
			defer wg.Done()
			payload := wstest.Mask([]byte(`{"type":"message","content":"`+strings.Repeat("z", 1000)+`"}`), 0)
			if r.Write(wstest.FrameHeader(true, 0x1, uint64(len(payload)))) != nil {
				return
			}
			for i := range payload {
				if r.Write(payload[i:i+1]) != nil {
					return // the server hung up
				}
				time.Sleep(20 * time.Millisecond) // the dribble itself, not a synchronisation
			}
		}()
	}
	wstest.WaitFor(t, "every dead peer reclaimed", func() bool { return a.stats().Connections == 1 })
	took := time.Since(start)
	// Reclaimed within the idle timeout, a ping interval, and the 2 s a
	// closed socket lingers for a peer still sending (the dribblers do),
	// with 4 s to spare for a loaded machine.
	if took > idle+interval+6*time.Second {
		t.Errorf("dead peers reclaimed after %v, with an idle timeout of %v", took, idle)
	}
	// The silent ones and the dribblers were cut off: their sockets end.
	for _, r := range append(silentOnes[:silent:silent], dribbling...) {
		if e := r.ReadToEnd(wstest.Timeout, 1<<20); e.Err != nil || !e.AfterEOF {
			t.Errorf("silent peer: %+v", e.Err)
		}
		r.Close()
	}
	wg.Wait()
	if n := lobby.Len(); n != 2 {
		t.Errorf("lobby has %d subscribers, want the witness and the auditor", n)
	}
	a.finish()
	t.Logf("hostile: %d dead peers (%d silent, %d reset, %d FIN without close frame, %d dribbling a frame) reclaimed in %v, idle timeout %v",
		total, silent, reset, fin, dribblers, took.Round(time.Millisecond), idle)
}

// TestHostilePingFlood: pings do not count against the rate limit, so a
// flood of them is answered, pong for ping, as long as the flooder reads;
// one that does not read fills its own queue with pongs and is closed as a
// slow consumer, with the server's heap bounded.
func TestHostilePingFlood(t *testing.T) {
	skipIfShort(t, "arena")
	wstest.CheckGoroutines(t)
	a := newArena(t, arenaOptions{}, chatToOut, wsroom.WithWriteTimeout(2*time.Second))

	// A flooder that reads: every ping answered, in order. It keeps up to
	// half a send queue of pings unanswered (a burst of more than the
	// queue's frames may close even a reading client as a slow
	// consumer: the pongs are queued like any other frame).
	reader, _, err := wstest.RawDial(a.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	const pings, window = 5000, wsroom.DefaultSendQueueFrames / 2
	answered := make(chan int, pings)
	pongErr := make(chan error, 1)
	go func() {
		next := 0
		for next < pings {
			f, err := reader.ReadFrame(1 << 20)
			if err != nil {
				pongErr <- fmt.Errorf("after %d pongs: %w", next, err)
				return
			}
			if f.Opcode == 0x8 {
				code, reason := f.CloseCode()
				pongErr <- fmt.Errorf("after %d pongs: closed %d %q", next, code, reason)
				return
			}
			if f.Opcode != 0xA {
				continue
			}
			if got := binary.BigEndian.Uint32(f.Payload); got != uint32(next) {
				pongErr <- fmt.Errorf("pong %d carries %d", next, got)
				return
			}
			next++
			answered <- next
		}
		pongErr <- nil
	}()
	var burst []byte
	done := 0
	for sent := 0; sent < pings; {
		for sent-done >= window {
			select {
			case done = <-answered:
			case err := <-pongErr:
				t.Fatalf("reading flooder: %v", err)
			case <-time.After(wstest.Timeout):
				t.Fatalf("reading flooder: no pong for %v after %d", wstest.Timeout, done)
			}
		}
		burst = burst[:0]
		for ; sent < pings && sent-done < window && len(burst) < 16<<10; sent++ {
			burst = append(burst, wstest.Frame(true, 0x9, binary.BigEndian.AppendUint32(nil, uint32(sent)))...)
		}
		if err := reader.Write(burst); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case err := <-pongErr:
		if err != nil {
			t.Fatalf("reading flooder: %v", err)
		}
	case <-time.After(wstest.Timeout):
		t.Fatal("reading flooder: pongs stopped coming")
	}
	closeRaw(t, reader)

	// A flooder that does not read, with the largest pings.
	heap := watchHeap(t)
	deaf, _, err := wstest.RawDial(a.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer deaf.Close()
	big := bytes.Repeat(wstest.Frame(true, 0x9, bytes.Repeat([]byte("p"), 125)), 512)
	sentBytes := 0
	// A write that times out part way resumes where it stopped: starting
	// the burst again would cut a frame and make the stream a protocol
	// error, which would close the flooder for the wrong reason.
	pending := big
	for a.stats().SlowConsumerCloses == 0 && sentBytes < 256<<20 {
		_ = deaf.Conn.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		n, err := deaf.Conn.Write(pending)
		sentBytes += n
		if pending = pending[n:]; len(pending) == 0 {
			pending = big
		}
		if err != nil && a.stats().SlowConsumerCloses == 0 {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Fatalf("deaf flooder: %v", err)
			}
		}
	}
	growth := heap.growth()
	if got := a.stats().SlowConsumerCloses; got != 1 {
		t.Fatalf("deaf flooder sent %d MiB of pings: %d slow-consumer closes, want 1", sentBytes>>20, got)
	}
	if growth > 24<<20 {
		t.Errorf("heap grew by %d MiB during the ping flood", growth>>20)
	}
	e := deaf.ReadToEnd(wstest.Timeout, 1<<20)
	if e.Err != nil || e.Code != 1008 || e.Reason != "slow consumer" {
		t.Fatalf("deaf flooder: close %d %q, %v; want 1008 slow consumer", e.Code, e.Reason, e.Err)
	}
	a.finish()
	t.Logf("hostile: %d pings answered in order; a deaf flooder closed 1008 after %d MiB of pings; server heap peak +%d MiB",
		pings, sentBytes>>20, growth>>20)
}

// frameCase is one hostile (or merely unusual) sequence of frames.
type frameCase struct {
	name string
	send []byte
	code uint16 // the close code expected; 0: the connection stays open
	// expect, for a connection that stays open, checks the frames received
	// before the polite close.
	expect func(frames []wstest.ServerFrame) error
}

func closePayload(code uint16, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, code), reason...)
}

func cat(frames ...[]byte) []byte { return bytes.Join(frames, nil) }

// wantMessage expects the room to have published a message with content.
func wantMessage(content string) func([]wstest.ServerFrame) error {
	return func(frames []wstest.ServerFrame) error {
		for _, f := range frames {
			var m chatOut
			if f.Opcode == 0x1 && json.Unmarshal(f.Payload, &m) == nil && m.Type == "message" && m.Content == content {
				return nil
			}
		}
		return fmt.Errorf("no message %q came back from the room", content)
	}
}

// wantErrorReply expects the default error reply.
func wantErrorReply(frames []wstest.ServerFrame) error {
	for _, f := range frames {
		var m struct{ Type, Error string }
		if f.Opcode == 0x1 && json.Unmarshal(f.Payload, &m) == nil && m.Type == "error" && m.Error != "" {
			return nil
		}
	}
	return fmt.Errorf("no error reply")
}

// wantPong expects a pong carrying payload.
func wantPong(payload []byte, then func([]wstest.ServerFrame) error) func([]wstest.ServerFrame) error {
	return func(frames []wstest.ServerFrame) error {
		for _, f := range frames {
			if f.Opcode == 0xA && bytes.Equal(f.Payload, payload) {
				if then != nil {
					return then(frames)
				}
				return nil
			}
		}
		return fmt.Errorf("no pong carrying %q", payload)
	}
}

// frameCases returns the cases; messages that must come back from the room
// carry nonce, so that concurrent runs cannot satisfy each other.
func frameCases(readLimit int, nonce string) []frameCase {
	F := wstest.Frame
	msg := func(content string) []byte { return []byte(`{"type":"message","content":"` + content + `"}`) }
	whole := msg("assembled " + nonce)
	assembled := wantMessage("assembled " + nonce)
	cases := []frameCase{
		{name: "text in three fragments", send: cat(F(false, 1, whole[:5]), F(false, 0, whole[5:20]), F(true, 0, whole[20:])), expect: assembled},
		{name: "ping between fragments", send: cat(F(false, 1, whole[:5]), F(true, 9, []byte("mid")), F(true, 0, whole[5:])), expect: wantPong([]byte("mid"), assembled)},
		{name: "pong between fragments", send: cat(F(false, 1, whole[:5]), F(true, 10, nil), F(true, 0, whole[5:])), expect: assembled},
		{name: "UTF-8 sequence split across fragments", send: cat(F(false, 1, msg("é" + nonce)[:30]), F(true, 0, msg("é" + nonce)[30:])), expect: wantMessage("é" + nonce)},
		{name: "empty fragments", send: cat(F(false, 1, nil), F(false, 0, whole), F(false, 0, nil), F(true, 0, nil)), expect: assembled},
		{name: "ping with 125 bytes", send: F(true, 9, bytes.Repeat([]byte("p"), 125)), expect: wantPong(bytes.Repeat([]byte("p"), 125), nil)},
		{name: "unsolicited pong", send: F(true, 10, []byte("hi")), expect: func([]wstest.ServerFrame) error { return nil }},
		{name: "binary frame", send: F(true, 2, whole), expect: wantErrorReply},
		{name: "not JSON", send: F(true, 1, []byte("{{{")), expect: wantErrorReply},
		{name: "empty text", send: F(true, 1, nil), expect: wantErrorReply},
		{name: "unknown field", send: F(true, 1, []byte(`{"type":"message","admin":true}`)), expect: wantErrorReply},
		{name: "value outside the enum", send: F(true, 1, []byte(`{"type":"shout"}`)), expect: wantErrorReply},
		{name: "two JSON values", send: F(true, 1, []byte(`{"type":"message"} {"type":"message"}`)), expect: wantErrorReply},
		{name: "NUL and escapes", send: F(true, 1, []byte(`{"type":"message","content":"\u0000\ud800`+nonce+`"}`)), expect: wantMessage("\x00\uFFFD" + nonce)},

		{name: "close inside fragments", send: cat(F(false, 1, whole[:5]), F(true, 8, closePayload(1000, ""))), code: 1000},
		{name: "close 4000 from the peer", send: F(true, 8, closePayload(4000, "bye")), code: 4000},
		{name: "close without a code", send: F(true, 8, nil), code: 1005},
		{name: "fragmented ping", send: cat(F(false, 9, []byte("a")), F(true, 0, []byte("b"))), code: 1002},
		{name: "ping of 126 bytes", send: F(true, 9, bytes.Repeat([]byte("p"), 126)), code: 1002},
		{name: "close of 126 bytes", send: F(true, 8, closePayload(1000, strings.Repeat("r", 124))), code: 1002},
		{name: "close with a 1-byte payload", send: F(true, 8, []byte{3}), code: 1002},
		{name: "close reason not UTF-8", send: F(true, 8, closePayload(1000, "\xff")), code: 1007},
		{name: "invalid UTF-8", send: F(true, 1, []byte("{\"type\":\"\xff\"}")), code: 1007},
		{name: "truncated UTF-8 at the end", send: F(true, 1, []byte("{\"type\":\"message\"}\xc3")), code: 1007},
		{name: "overlong UTF-8", send: F(true, 1, []byte("\"\xc0\xaf\"")), code: 1007},
		{name: "UTF-16 surrogate in UTF-8", send: F(true, 1, []byte("\"\xed\xa0\x80\"")), code: 1007},
		{name: "invalid UTF-8 across fragments", send: cat(F(false, 1, []byte("\"\xc3")), F(true, 0, []byte("(\""))), code: 1007},
		{name: "unmasked text", send: wstest.UnmaskedFrame(true, 1, whole), code: 1002},
		{name: "unmasked ping", send: wstest.UnmaskedFrame(true, 9, nil), code: 1002},
		{name: "unmasked close", send: wstest.UnmaskedFrame(true, 8, closePayload(1000, "")), code: 1002},
		{name: "unmasked continuation", send: cat(F(false, 1, whole[:5]), wstest.UnmaskedFrame(true, 0, whole[5:])), code: 1002},
		{name: "continuation without a start", send: F(true, 0, whole), code: 1002},
		{name: "text inside a fragmented message", send: cat(F(false, 1, whole[:5]), F(true, 1, whole)), code: 1002},
		{name: "binary inside a fragmented message", send: cat(F(false, 1, whole[:5]), F(true, 2, whole)), code: 1002},
		{name: "64-bit length with the top bit set", send: cat([]byte{0x81, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0}, []byte{1, 2, 3, 4}), code: 1002},
		{name: "length over the read limit, header only", send: wstest.FrameHeader(true, 1, uint64(readLimit)+1), code: 1009},
		{name: "length of 2^62, header only", send: wstest.FrameHeader(true, 1, 1<<62), code: 1009},
		{name: "fragments over the read limit", send: cat(F(false, 1, bytes.Repeat([]byte(" "), readLimit/2+1)), F(true, 0, bytes.Repeat([]byte(" "), readLimit/2+1))), code: 1009},
	}
	for _, op := range []byte{3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF} {
		cases = append(cases, frameCase{name: fmt.Sprintf("unknown opcode %#x", op), send: F(true, op, []byte("x")), code: 1002})
	}
	for _, rsv := range []byte{0x40, 0x20, 0x10} {
		cases = append(cases,
			frameCase{name: fmt.Sprintf("reserved bit %#x on text", rsv), send: F(true, rsv|1, whole), code: 1002},
			frameCase{name: fmt.Sprintf("reserved bit %#x on ping", rsv), send: F(true, rsv|9, nil), code: 1002},
			frameCase{name: fmt.Sprintf("reserved bit %#x on continuation", rsv), send: cat(F(false, 1, whole[:5]), F(true, rsv|0, whole[5:])), code: 1002},
		)
	}
	for _, code := range []uint16{0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535} {
		cases = append(cases, frameCase{name: fmt.Sprintf("close with invalid code %d", code), send: F(true, 8, closePayload(code, "")), code: 1002})
	}
	return cases
}

// TestHostileFrames runs every malformed frame sequence against the
// server, each on its own connection, all of them twice (one after the
// other, then all at once): each gets the close code RFC 6455 asks for, or
// is served if it was merely unusual, the server's own frames stay valid,
// and the witness gets everything.
func TestHostileFrames(t *testing.T) {
	wstest.CheckGoroutines(t)
	const readLimit = 64 << 10
	a := newArena(t, arenaOptions{}, chatToOut, wsroom.WithReadLimit(readLimit))
	kinds := len(frameCases(readLimit, ""))
	var runs atomic.Int64
	run := func(tc frameCase, nonce string) error {
		r, _, err := wstest.RawDial(a.url, nil)
		if err != nil {
			return err
		}
		defer r.Close()
		if err := r.Write(tc.send); err != nil && tc.code == 0 {
			return err
		}
		if tc.code == 0 {
			// Served: a marker message, then a polite close.
			if err := r.Write(wstest.Frame(true, 1, []byte(`{"type":"message","content":"marker `+nonce+`"}`))); err != nil {
				return err
			}
			e := readUntil(r, wantMessage("marker "+nonce))
			if e.Err != nil {
				return fmt.Errorf("stays open: %v", e.Err)
			}
			if err := tc.expect(e.Frames); err != nil {
				return err
			}
			if err := r.Write(wstest.Frame(true, 8, closePayload(1000, ""))); err != nil {
				return err
			}
			end := r.ReadToEnd(wstest.Timeout, 1<<20)
			if end.Err != nil || end.Code != 1000 {
				return fmt.Errorf("polite close: code %d, %v", end.Code, end.Err)
			}
			return nil
		}
		e := r.ReadToEnd(wstest.Timeout, 1<<20)
		switch {
		case e.Err != nil:
			return e.Err
		case !e.Closed:
			return fmt.Errorf("connection ended without a close frame, want %d", tc.code)
		case e.Code != tc.code:
			return fmt.Errorf("close %d %q, want %d", e.Code, e.Reason, tc.code)
		}
		return nil
	}
	for i := range kinds {
		nonce := fmt.Sprint("s", i)
		tc := frameCases(readLimit, nonce)[i]
		runs.Add(1)
		if err := run(tc, nonce); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	var wg sync.WaitGroup
	var failed atomic.Int64
	for round := range 2 {
		for i := range kinds {
			nonce := fmt.Sprint("c", round, "-", i)
			tc := frameCases(readLimit, nonce)[i]
			wg.Add(1)
			runs.Add(1)
			go func() {
				defer wg.Done()
				if err := run(tc, nonce); err != nil {
					failed.Add(1)
					t.Errorf("concurrently, %s: %v", tc.name, err)
				}
			}()
		}
	}
	wg.Wait()
	a.finish()
	t.Logf("hostile: %d frame sequences (%d kinds, once in turn, then twice all at once); %d failed", runs.Load(), kinds, failed.Load())
}

// readUntil reads frames until done accepts them or the connection ends.
func readUntil(r *wstest.Raw, done func([]wstest.ServerFrame) error) wstest.Ending {
	var e wstest.Ending
	_ = r.Conn.SetReadDeadline(time.Now().Add(wstest.Timeout))
	defer r.Conn.SetReadDeadline(time.Time{})
	for {
		f, err := r.ReadFrame(1 << 20)
		if err != nil {
			e.Err = err
			return e
		}
		e.Frames = append(e.Frames, f)
		if f.Opcode == 0x8 {
			e.Closed = true
			e.Code, e.Reason = f.CloseCode()
			e.Err = fmt.Errorf("closed %d %q", e.Code, e.Reason)
			return e
		}
		if done(e.Frames) == nil {
			return e
		}
	}
}

// TestHostileBurstsWithinTheRateLimitDoNotCloseOtherMembers: clients that
// stay within the rate limit (each sends exactly the default burst, 1000
// messages, at once) in a room whose handler relays every message, as a
// chat does. Their bursts reach every member's send queue (16,384 frames by
// default) at once; members that read all the time must not pay for it:
// none may be closed as a slow consumer. (8000 messages of 60 bytes is
// less than half a megabyte per member: the sockets take it as fast as
// the server writes it.)
func TestHostileBurstsWithinTheRateLimitDoNotCloseOtherMembers(t *testing.T) {
	skipIfShort(t, "arena")
	wstest.CheckGoroutines(t)
	a := newArena(t, arenaOptions{}, chatToOut)
	const bursters, rounds = 8, 2 // fresh clients each round, with full buckets
	burst := bytes.Repeat(wstest.Frame(true, 0x1, []byte(`{"type":"typing","content":"burst"}`)), wsroom.DefaultRateBurst)
	want := bursters * wsroom.DefaultRateBurst // what each member gets in a round
	relayed := int64(0)
	for round := range rounds {
		var rs []*wstest.Raw
		for range bursters {
			r, _, err := wstest.RawDial(a.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			rs = append(rs, r)
		}
		wstest.WaitFor(t, "the bursters in the lobby", func() bool { return a.rooms.Room("lobby").Len() == 2+bursters })
		// Every member reads all the time: a burster reads what the room
		// relays (its own messages and the others') from the start.
		results := make(chan error, bursters)
		for _, r := range rs {
			go func() {
				got := 0
				marker := []byte(`"content":"burst"`)
				e := readUntil(r, func(frames []wstest.ServerFrame) error {
					// Counting without decoding keeps the reader quick.
					if f := frames[len(frames)-1]; f.Opcode == 0x1 && bytes.Contains(f.Payload, marker) {
						got++
					}
					if got < want {
						return io.EOF // not yet
					}
					return nil
				})
				if e.Err != nil {
					results <- fmt.Errorf("a burster got %d of the %d messages relayed: %w", got, want, e.Err)
					return
				}
				results <- nil
			}()
		}
		var wg sync.WaitGroup
		for _, r := range rs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = r.Write(burst)
			}()
		}
		wg.Wait()
		relayed += int64(want)
		wstest.WaitFor(t, "every burst relayed, or a member closed", func() bool {
			return a.published.Load()-a.ticks.Load() >= relayed || a.stats().SlowConsumerCloses > 0
		})
		if s := a.stats(); s.SlowConsumerCloses != 0 || s.RateLimited != 0 {
			witness := "still open"
			select {
			case <-a.w.done:
				witness = "closed too"
			case <-time.After(100 * time.Millisecond):
			}
			t.Fatalf("round %d: %d members closed as slow consumers (%d rate-limited; the witness %s), all of them reading, while %d clients within the rate limit sent %d messages each",
				round, s.SlowConsumerCloses, s.RateLimited, witness, bursters, wsroom.DefaultRateBurst)
		}
		for range bursters {
			if err := <-results; err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		for _, r := range rs {
			closeRaw(t, r)
		}
		wstest.WaitFor(t, "the bursters gone", func() bool { return a.stats().Connections == 1 })
	}
	a.finish()
	t.Logf("hostile: %d rounds of %d clients sending %d messages each at once, within the rate limit, relayed to the room; %d slow-consumer closes",
		rounds, bursters, wsroom.DefaultRateBurst, a.stats().SlowConsumerCloses)
}

// The compressed-frame attacks (WithCompression): a client that negotiated
// permessage-deflate, or one that did not and sets RSV1 anyway.

// compressedCase is one compressed (or wrongly marked) frame sequence.
type compressedCase struct {
	name      string
	plainPeer bool // the client does not offer the extension
	send      []byte
	code      uint16 // the close code expected; 0: served, expect checks what came back
	expect    func(frames []wstest.ServerFrame) error
}

// compressedCases returns the cases against an endpoint whose read limit
// is readLimit; messages that must come back carry nonce.
func compressedCases(t *testing.T, readLimit int, nonce string) []compressedCase {
	F := wstest.Frame
	msg := func(content string) []byte { return []byte(`{"type":"message","content":"` + content + `"}`) }
	z := func(p []byte) []byte { return deflate(t, p) }
	whole := z(msg("inflated " + nonce))
	inflated := inflating(wantMessage("inflated " + nonce))
	atLimit := msg("at the limit " + nonce)
	atLimit = msg("at the limit " + nonce + strings.Repeat(" ", readLimit-len(atLimit)))
	bomb := z(msg(strings.Repeat("A", 16*readLimit)))
	return []compressedCase{
		{name: "compressed text", send: F(true, 0x41, whole), expect: inflated},
		{name: "compressed text in three fragments", send: cat(F(false, 0x41, whole[:3]), F(false, 0, whole[3:7]), F(true, 0, whole[7:])), expect: inflated},
		{name: "ping between compressed fragments", send: cat(F(false, 0x41, whole[:3]), F(true, 9, []byte("mid")), F(true, 0, whole[3:])), expect: wantPong([]byte("mid"), inflated)},
		{name: "plain text between compressed ones", send: cat(F(true, 0x41, z(msg("one "+nonce))), F(true, 1, msg("two "+nonce))), expect: inflating(wantMessage("two " + nonce))},
		{name: "inflating to exactly the read limit", send: F(true, 0x41, z(atLimit)), expect: inflating(wantMessage(strings.TrimSuffix(strings.TrimPrefix(string(atLimit), `{"type":"message","content":"`), `"}`)))},
		{name: "compressed binary", send: F(true, 0x42, whole), expect: inflating(wantErrorReply)},
		{name: "compressed empty message", send: F(true, 0x41, z(nil)), expect: inflating(wantErrorReply)},
		{name: "bomb: a small frame inflating past the read limit", send: F(true, 0x41, bomb), code: 1009},
		{name: "bomb in fragments", send: cat(F(false, 0x41, bomb[:len(bomb)/2]), F(true, 0, bomb[len(bomb)/2:])), code: 1009},
		{name: "one byte past the read limit inflated", send: F(true, 0x41, z(append(atLimit, ' '))), code: 1009},
		{name: "corrupt deflate stream", send: F(true, 0x41, []byte{0xff, 0xff, 0xff, 0xff}), code: 1007},
		{name: "compressed invalid UTF-8", send: F(true, 0x41, z([]byte("{\"type\":\"\xff\"}"))), code: 1007},
		{name: "RSV1 on a continuation", send: cat(F(false, 0x41, whole[:3]), F(true, 0x40, whole[3:])), code: 1002},
		{name: "RSV1 on a continuation of plain text", send: cat(F(false, 1, msg("x")[:3]), F(true, 0x40, msg("x")[3:])), code: 1002},
		{name: "RSV1 on a ping", send: F(true, 0x49, nil), code: 1002},
		{name: "RSV1 on a close", send: F(true, 0x48, closePayload(1000, "")), code: 1002},
		{name: "RSV2 on a compressed message", send: F(true, 0x61, whole), code: 1002},
		{name: "RSV1 without negotiating", plainPeer: true, send: F(true, 0x41, whole), code: 1002},
	}
}

// inflating runs check on the frames with the compressed ones inflated.
func inflating(check func([]wstest.ServerFrame) error) func([]wstest.ServerFrame) error {
	return func(frames []wstest.ServerFrame) error {
		plain := make([]wstest.ServerFrame, len(frames))
		for i, f := range frames {
			if f.RSV != 0 {
				r := flate.NewReader(io.MultiReader(bytes.NewReader(f.Payload), bytes.NewReader([]byte{0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff})))
				p, err := io.ReadAll(r)
				if err != nil {
					return fmt.Errorf("frame %d does not inflate: %v", i, err)
				}
				f.Payload, f.RSV = p, 0
			}
			plain[i] = f
		}
		return check(plain)
	}
}

// TestHostileCompressedFrames runs every compressed frame sequence against
// an endpoint with compression, each on its own connection, in turn and
// then all at once: a bomb closes with 1009 however it is split, a stream
// that does not inflate (or inflates to invalid UTF-8) with 1007, RSV1
// where RFC 7692 forbids it with 1002, and everything else is served.
// 1007 for a corrupt stream: the frames are well formed, their payload is
// not what the message's type says it is, as with invalid UTF-8.
func TestHostileCompressedFrames(t *testing.T) {
	wstest.CheckGoroutines(t)
	const readLimit = 64 << 10
	a := newArena(t, arenaOptions{}, chatToOut, wsroom.WithReadLimit(readLimit), wsroom.WithCompression(1))
	run := func(tc compressedCase, nonce string) error {
		h := offer("permessage-deflate; client_max_window_bits")
		if tc.plainPeer {
			h = nil
		}
		r, _, err := wstest.RawDial(a.url, h)
		if err != nil {
			return err
		}
		defer r.Close()
		if r.Deflate = r.Header.Get("Sec-WebSocket-Extensions") != ""; r.Deflate == tc.plainPeer {
			return fmt.Errorf("negotiated %v", r.Deflate)
		}
		if err := r.Write(tc.send); err != nil && tc.code == 0 {
			return err
		}
		if tc.code == 0 {
			marker := wstest.Frame(true, 1, []byte(`{"type":"message","content":"marker `+nonce+`"}`))
			if err := r.Write(marker); err != nil {
				return err
			}
			e := readUntil(r, inflating(wantMessage("marker "+nonce)))
			if e.Err != nil {
				return fmt.Errorf("stays open: %v", e.Err)
			}
			return tc.expect(e.Frames)
		}
		e := r.ReadToEnd(wstest.Timeout, 1<<20)
		switch {
		case e.Err != nil:
			return e.Err
		case !e.Closed:
			return fmt.Errorf("connection ended without a close frame, want %d", tc.code)
		case e.Code != tc.code:
			return fmt.Errorf("close %d %q, want %d", e.Code, e.Reason, tc.code)
		}
		return nil
	}
	kinds := len(compressedCases(t, readLimit, ""))
	for i := range kinds {
		nonce := fmt.Sprint("z", i)
		tc := compressedCases(t, readLimit, nonce)[i]
		if err := run(tc, nonce); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	var wg sync.WaitGroup
	for i := range kinds {
		nonce := fmt.Sprint("zc", i)
		tc := compressedCases(t, readLimit, nonce)[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(tc, nonce); err != nil {
				t.Errorf("concurrently, %s: %v", tc.name, err)
			}
		}()
	}
	wg.Wait()
	a.finish()
}
