package brokertest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/wstest"
)

// Pair returns two brokers standing for two processes that share one
// server; they are closed at the test's cleanup.
type Pair func(t *testing.T) (a, b wsroom.Broker)

// Run checks the Broker contract on brokers from pair, each part a
// subtest (see the package doc): delivery to other processes but not back
// to the publisher, a subscription in effect once ready, per-publisher
// order, rooms kept apart whatever their names, cancel, two complete
// wsroom instances joined by the brokers, and Close. Each subtest calls
// pair afresh.
func Run(t *testing.T, pair Pair) {
	t.Run("DeliversToOtherProcessesOnly", func(t *testing.T) { deliversToOthersOnly(t, pair) })
	t.Run("ReadyMeansSubscribed", func(t *testing.T) { readyMeansSubscribed(t, pair) })
	t.Run("KeepsPublisherOrder", func(t *testing.T) { keepsOrder(t, pair) })
	t.Run("KeepsRoomsApartWhateverTheirNames", func(t *testing.T) { keepsRoomsApart(t, pair) })
	t.Run("CancelStopsDelivery", func(t *testing.T) { cancelStops(t, pair) })
	t.Run("JoinThenPublish", func(t *testing.T) { JoinThenPublish(t, pair, 100) })
	t.Run("TwoInstances", func(t *testing.T) { TwoInstances(t, pair, 1000) })
	t.Run("Close", func(t *testing.T) { closeSemantics(t, pair) })
}

// Subscribe subscribes deliver to room on b and waits for the
// subscription's ready, failing the test if it is not closed within
// wsroom.BrokerReadyTimeout. It returns the cancel func.
func Subscribe(t testing.TB, b wsroom.Broker, room string, deliver func([]byte)) (cancel func()) {
	t.Helper()
	cancel, ready := b.Subscribe(room, deliver)
	select {
	case <-ready:
	case <-time.After(wsroom.BrokerReadyTimeout):
		t.Fatalf("subscription to %q not ready within %v", room, wsroom.BrokerReadyTimeout)
	}
	return cancel
}

// Inbox records what a subscription delivers.
type Inbox struct{ ch chan []byte }

// NewInbox returns an inbox holding up to n messages.
func NewInbox(n int) *Inbox { return &Inbox{ch: make(chan []byte, n)} }

// Deliver is the func to hand Subscribe.
func (in *Inbox) Deliver(p []byte) { in.ch <- append([]byte(nil), p...) }

// Next returns the next payload that is not a probe, failing the test
// after wstest.Timeout.
func (in *Inbox) Next(t testing.TB) []byte {
	t.Helper()
	deadline := time.After(wstest.Timeout)
	for {
		select {
		case p := <-in.ch:
			if !isProbe(p) {
				return p
			}
		case <-deadline:
			t.Fatal("no message within", wstest.Timeout)
		}
	}
}

func isProbe(p []byte) bool { return bytes.HasPrefix(p, []byte(`{"probe":`)) }

// Await publishes probes on from until to's inbox gets one: real brokers
// set up subscriptions asynchronously, and a test must not race them.
func Await(t testing.TB, from wsroom.Broker, room string, to *Inbox) {
	t.Helper()
	deadline := time.Now().Add(wstest.Timeout)
	for i := 0; time.Now().Before(deadline); i++ {
		_ = from.Publish(room, fmt.Appendf(nil, `{"probe":%d}`, i))
		select {
		case p := <-to.ch:
			if isProbe(p) {
				return
			}
			t.Fatalf("got %s while waiting for a probe", p)
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("subscription to %q never became active", room)
}

func deliversToOthersOnly(t *testing.T, pair Pair) {
	a, b := pair(t)
	inA, inB := NewInbox(1024), NewInbox(1024)
	defer Subscribe(t, a, "r", inA.Deliver)()
	defer Subscribe(t, b, "r", inB.Deliver)()
	Await(t, a, "r", inB)
	Await(t, b, "r", inA)
	if err := a.Publish("r", []byte(`{"from":"a","text":"héllo \u263a"}`)); err != nil {
		t.Fatal(err)
	}
	if got := inB.Next(t); string(got) != `{"from":"a","text":"héllo \u263a"}` {
		t.Fatalf("b got %s", got)
	}
	// a must not have had its own message back: the next thing a gets is
	// what b publishes now.
	if err := b.Publish("r", []byte(`{"from":"b"}`)); err != nil {
		t.Fatal(err)
	}
	if got := inA.Next(t); string(got) != `{"from":"b"}` {
		t.Fatalf("a got %s: its own publish was echoed back", got)
	}
}

// readyMeansSubscribed checks that once ready is closed, a publish from
// another process reaches the subscription at once: no probe, no retry.
// Each round is a room new to both brokers, subscribed and cancelled.
func readyMeansSubscribed(t *testing.T, pair Pair) {
	const rounds = 300
	a, b := pair(t)
	in := NewInbox(4)
	for i := range rounds {
		room := fmt.Sprintf("ready-%d", i)
		cancel := Subscribe(t, b, room, in.Deliver)
		want := fmt.Sprintf(`{"round":%d}`, i)
		if err := a.Publish(room, []byte(want)); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		if got := in.Next(t); string(got) != want {
			t.Fatalf("round %d: got %s, want %s", i, got, want)
		}
		cancel()
	}
}

func keepsOrder(t *testing.T, pair Pair) {
	const n = 5000
	a, b := pair(t)
	inB := NewInbox(n + 64)
	defer Subscribe(t, b, "order", inB.Deliver)()
	Await(t, a, "order", inB)
	published := make(chan error, 1)
	go func() {
		for i := range n {
			if err := a.Publish("order", fmt.Appendf(nil, `{"seq":%d}`, i)); err != nil {
				published <- fmt.Errorf("publish %d: %w", i, err)
				return
			}
		}
		published <- nil
	}()
	defer func() {
		if err := <-published; err != nil {
			t.Error(err)
		}
	}()
	for i := range n {
		var m struct{ Seq int }
		if err := json.Unmarshal(inB.Next(t), &m); err != nil || m.Seq != i {
			t.Fatalf("message %d: seq %d (%v)", i, m.Seq, err)
		}
	}
}

// hostileNames are room names that must neither be refused nor reach
// other rooms: wildcards and separators of NATS subjects and Redis
// patterns, SQL quoting and statement separators, spaces, control
// characters and NUL, non-ASCII and very long names.
var hostileNames = []string{
	"plain", "", "a.b", "a.*", "*", ">", "a.>", "a b", "tab\there", "new\nline",
	"ümlaut-房间", "a/b", "room:1", "wsroom", "[abc]", "a?c", "h*llo", "%2A", "$SYS",
	"'", `"`, "a'; DROP TABLE x; --", `"; NOTIFY x; --`, "$$", `\`, "nul\x00byte", "\x00",
	strings.Repeat("long", 100),
	strings.Repeat("x", 100_000), // beyond protocol line limits: must be shortened, not sent as is
}

func keepsRoomsApart(t *testing.T, pair Pair) {
	a, b := pair(t)
	inboxes := make([]*Inbox, len(hostileNames))
	for i, name := range hostileNames {
		inboxes[i] = NewInbox(64)
		defer Subscribe(t, b, name, inboxes[i].Deliver)()
	}
	for i, name := range hostileNames {
		Await(t, a, name, inboxes[i])
	}
	for i, name := range hostileNames {
		if err := a.Publish(name, fmt.Appendf(nil, `{"room":%d}`, i)); err != nil {
			t.Fatalf("publish to %q: %v", name, err)
		}
	}
	for i, name := range hostileNames {
		want := fmt.Sprintf(`{"room":%d}`, i)
		if got := inboxes[i].Next(t); string(got) != want {
			t.Fatalf("room %q got %s, want %s", name, got, want)
		}
	}
	// Nothing else arrived anywhere: a marker is each room's next message.
	for i, name := range hostileNames {
		if err := a.Publish(name, []byte(`{"marker":true}`)); err != nil {
			t.Fatal(err)
		}
		if got := inboxes[i].Next(t); string(got) != `{"marker":true}` {
			t.Fatalf("room %q got %s, want only its own messages", name, got)
		}
	}
}

func cancelStops(t *testing.T, pair Pair) {
	a, b := pair(t)
	cancelled, kept := NewInbox(64), NewInbox(64)
	cancel := Subscribe(t, b, "c", cancelled.Deliver)
	defer Subscribe(t, b, "c", kept.Deliver)()
	Await(t, a, "c", cancelled)
	Await(t, a, "c", kept)
	cancel()
	if err := a.Publish("c", []byte(`{"after":"cancel"}`)); err != nil {
		t.Fatal(err)
	}
	kept.Next(t) // the message went out...
	if err := a.Publish("c", []byte(`{"after":"cancel","n":2}`)); err != nil {
		t.Fatal(err)
	}
	kept.Next(t)
	for { // ...and reached only the live subscription
		select {
		case p := <-cancelled.ch:
			if !isProbe(p) {
				t.Fatalf("cancelled subscription got %s", p)
			}
		default:
			return
		}
	}
}
