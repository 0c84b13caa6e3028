package pgbroker_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/wsroom/wsroom/brokertest"
	"github.com/wsroom/wsroom/internal/wstest"
)

// Payloads of any size cross: those too long for a notification (its
// payload must be under 8000 bytes) travel in the log, which the
// notification points to, and keep their place in the room's order among
// short ones. So do bytes a notification cannot carry as text: NUL and
// invalid UTF-8.
func TestPayloadsOfAnySizeAndAnyBytesCrossInOrder(t *testing.T) {
	wstest.CheckGoroutines(t)
	a, b := pair(pgURL(t))(t)
	in := brokertest.NewInbox(64)
	defer brokertest.Subscribe(t, b, "big", in.Deliver)()
	brokertest.Await(t, a, "big", in)
	payloads := [][]byte{
		[]byte(`{"short":true}`),
		[]byte(`"` + strings.Repeat("x", 7940) + `"`), // about the longest that fits a notification
		[]byte(`"` + strings.Repeat("x", 7999) + `"`),
		[]byte(`"` + strings.Repeat("é", 4000) + `"`), // 8002 bytes, 4002 characters
		[]byte(`{"short":2}`),
		bytes.Repeat([]byte("a"), 1<<20), // the endpoints' default read limit
		[]byte("nul\x00inside"),
		[]byte("invalid \xff\xfe utf-8"),
		[]byte(`{"short":3}`),
	}
	before := stats(b)
	for i, p := range payloads {
		if err := a.Publish("big", p); err != nil {
			t.Fatalf("publish %d (%d bytes): %v", i, len(p), err)
		}
	}
	for i, want := range payloads {
		if got := in.Next(t); !bytes.Equal(got, want) {
			t.Fatalf("message %d: got %d bytes %.40q, want %d bytes %.40q", i, len(got), got, len(want), want)
		}
	}
	// Five do not fit a notification; the log read for one of them may
	// bring the short ones after it too, whose notifications are then
	// dropped as duplicates.
	st := stats(b)
	if got := st.Received - before.Received; got != int64(len(payloads)) {
		t.Fatalf("%d messages received, want %d (stats %+v)", got, len(payloads), st)
	}
	if got := st.FromLog - before.FromLog; got < 5 {
		t.Fatalf("%d messages read from the log, want at least the 5 too long or not text (stats %+v)", got, st)
	}
}

// The same through two wsroom instances, up to the endpoint's read limit.
func TestInstancesCarryMessagesUpToTheReadLimit(t *testing.T) {
	wstest.CheckGoroutines(t)
	a, b := pair(pgURL(t))(t)
	A, B := brokertest.StartInstance(t, a), brokertest.StartInstance(t, b)
	ca, cb := A.Join(t, "r"), B.Join(t, "r")
	brokertest.Bridge(t, ca, cb)
	drain(t, cb)
	for i, size := range []int{10, 9000, 100_000, 1<<20 - 64} {
		sent := brokertest.Msg{From: strings.Repeat("z", size), Seq: i}
		ca.Send(t, sent)
		var got brokertest.Msg
		cb.JSON(t, &got)
		if got != sent {
			t.Fatalf("message %d of about %d bytes: got from of %d bytes, seq %d", i, size, len(got.From), got.Seq)
		}
	}
}
