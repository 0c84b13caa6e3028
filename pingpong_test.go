package wsroom_test

import (
	"testing"
	"time"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/wstest"
)

// The pings and pongs that come between messages are answered before gws
// sees them (pingpong.go); inside a message, and when malformed, gws
// answers them (the hostile tests cover those).

// readPong reads the next frame from r and checks it is a pong carrying
// payload.
func readPong(t testing.TB, r *wstest.Raw, payload string) {
	t.Helper()
	_ = r.Conn.SetReadDeadline(time.Now().Add(wstest.Timeout))
	f, err := r.ReadFrame(1 << 10)
	if err != nil {
		t.Fatalf("reading the pong %q: %v", payload, err)
	}
	if f.Opcode != 0xA || string(f.Payload) != payload {
		t.Fatalf("opcode %d, payload %q; want a pong carrying %q", f.Opcode, f.Payload, payload)
	}
}

func TestPingsBetweenMessagesAreAnsweredInOrder(t *testing.T) {
	_, srv := serve(t, echo, wsroom.WithLogger(discardLogger()), wsroom.WithHeartbeat(0, 0))
	r, _, err := wstest.RawDial(srv.URL+"/ws/lobby", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []byte
	out = append(out, wstest.Frame(true, 0x9, []byte("first ping"))...)
	out = append(out, textFrame(t, "a")...)
	out = append(out, wstest.Frame(true, 0xA, []byte("an unasked pong"))...)
	out = append(out, wstest.Frame(true, 0x9, nil)...)
	out = append(out, textFrame(t, "b")...)
	out = append(out, wstest.Frame(true, 0x9, []byte("last ping"))...)
	if err := r.Write(out); err != nil {
		t.Fatal(err)
	}
	readPong(t, r, "first ping")
	readEcho(t, r, "a")
	readPong(t, r, "")
	readEcho(t, r, "b")
	readPong(t, r, "last ping")
}

func TestAPingSentByteByByteIsAnswered(t *testing.T) {
	_, srv := serve(t, echo, wsroom.WithLogger(discardLogger()), wsroom.WithHeartbeat(0, 0))
	r, _, err := wstest.RawDial(srv.URL+"/ws/lobby", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, b := range wstest.Frame(true, 0x9, []byte("slowly")) {
		if err := r.Write([]byte{b}); err != nil {
			t.Fatal(err)
		}
	}
	readPong(t, r, "slowly")
	// The stream goes on after it.
	if err := r.Write(textFrame(t, "after")); err != nil {
		t.Fatal(err)
	}
	readEcho(t, r, "after")
}
