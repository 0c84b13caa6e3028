package natsbroker_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/brokertest"
	"github.com/wsroom/wsroom/internal/tcpproxy"
	"github.com/wsroom/wsroom/internal/wstest"
	"github.com/wsroom/wsroom/natsbroker"
)

// While its connection is down, a process's Record and History fail at
// once; what others record meanwhile reaches its recorded subscription
// once it is back, before anything newer, each offset once.
func TestRecordFailsAtOnceWhileDisconnectedAndTheSubscriptionCatchesUp(t *testing.T) {
	wstest.CheckGoroutines(t)
	ns := newJetStreamServer(t)
	px := tcpproxy.New(t, ns.url()[len("nats://"):])
	a := newBroker(t, connect(t, ns.url()), natsbroker.WithHistory(wsroom.DefaultHistorySize, time.Minute))
	ncB := connect(t, "nats://"+px.Addr())
	b := newBroker(t, ncB, natsbroker.WithHistory(wsroom.DefaultHistorySize, time.Minute))
	in := brokertest.NewRecordedInbox(64)
	defer brokertest.SubscribeRecorded(t, b, "cut", in.Deliver)()
	record(t, a, "cut", 3)
	for range 3 {
		in.Next(t)
	}

	px.Down()
	wstest.WaitFor(t, "b to notice it is cut off", func() bool { return !ncB.IsConnected() })
	began := time.Now()
	_, err := b.Record("cut", []byte(`{}`))
	_, _, _, herr := b.History(context.Background(), "cut", wsroom.Position{}, 10)
	if took := time.Since(began); !errors.Is(err, natsbroker.ErrNotConnected) || !errors.Is(herr, natsbroker.ErrNotConnected) || took > 100*time.Millisecond {
		t.Fatalf("Record and History while disconnected: %v, %v after %v; want ErrNotConnected at once", err, herr, took)
	}
	away := record(t, a, "cut", 10)

	px.Up()
	for _, want := range away {
		if got := in.Next(t); got.Position != want {
			t.Fatalf("after the reconnection: %+v, want %+v", got.Position, want)
		}
	}
	next := record(t, a, "cut", 1)[0]
	if got := in.Next(t); got.Position != next {
		t.Fatalf("live after catching up: %+v, want %+v", got.Position, next)
	}
	if s := b.Stats(); s.CaughtUp != 10 || s.Gaps != 0 || s.RecordErrors != 1 {
		t.Fatalf("stats %+v: want 10 caught up, no gap, the one failed record", s)
	}
}

// The stream is on disk: after a NATS server restart every room keeps its
// epoch and offsets, and a member that left before the restart recovers,
// on the other instance, what was recorded before and after it.
func TestRecoveryAfterANATSServerRestart(t *testing.T) {
	wstest.CheckGoroutines(t)
	ns := newJetStreamServer(t)
	ncA, ncB := connect(t, ns.url()), connect(t, ns.url())
	a := newBroker(t, ncA, natsbroker.WithHistory(wsroom.DefaultHistorySize, time.Minute))
	b := newBroker(t, ncB, natsbroker.WithHistory(wsroom.DefaultHistorySize, time.Minute))
	A, B := brokertest.StartHistoryInstance(t, a), brokertest.StartHistoryInstance(t, b)
	m := A.Dial(t, "restart", "m", nil)
	joined := brokertest.NextEvent(t, m)
	w := B.Dial(t, "restart", "w", nil)
	brokertest.NextEvent(t, w) // its own joined
	wJoined := brokertest.NextEvent(t, m)
	if wJoined.Type != "joined" || wJoined.From != "w" || wJoined.Seq != joined.Seq+1 {
		t.Fatalf("m got %+v after its own %+v", wJoined, joined)
	}
	pos := wsroom.Position{Offset: wJoined.Seq, Epoch: wJoined.Epoch}
	m.Close()

	ns.stop()
	wstest.WaitFor(t, "both processes to notice the outage", func() bool { return !ncA.IsConnected() && !ncB.IsConnected() })
	// The broker learns of the outage from nats.go's status events, a
	// moment after the connection's own flag: a publish to another room
	// says when it has.
	wstest.WaitFor(t, "b to know of the outage", func() bool {
		return errors.Is(b.Publish("probe", []byte(`{}`)), natsbroker.ErrNotConnected)
	})
	if _, err := b.Record("restart", []byte(`{}`)); !errors.Is(err, natsbroker.ErrNotConnected) {
		t.Fatalf("Record during the outage: %v", err)
	}
	ns.start()
	awaitHistory(t, a)
	awaitHistory(t, b)

	for n := 1; n <= 5; n++ {
		w.Send(t, brokertest.Event{Type: "message", N: n})
	}
	for n := 0; n < 5; { // w hears its own messages once they are recorded
		if ev := brokertest.NextEvent(t, w); ev.Type == "message" {
			n = ev.N
		}
	}
	m = B.Dial(t, "restart", "m", &pos)
	notice := brokertest.NextEvent(t, m)
	if notice.Type != "recovery" || !notice.Recovered || notice.Epoch != pos.Epoch || notice.Missed < 5 {
		t.Fatalf("reconnecting from %+v after the restart: %+v", pos, notice)
	}
	messages := 0
	for i := range notice.Missed {
		ev := brokertest.NextEvent(t, m)
		if ev.Seq != pos.Offset+1+uint64(i) || ev.Epoch != pos.Epoch {
			t.Fatalf("replayed %d: %+v after %+v", i, ev, pos)
		}
		if ev.Type == "message" {
			messages++
		}
	}
	if messages != 5 {
		t.Fatalf("%d of w's 5 messages replayed", messages)
	}
}

// An acknowledgement lost after JetStream stored a record (here the
// server's answers are held, as by a network that stalls) makes Record
// fail although the message is recorded, and delivered: the publisher is
// told ErrNotRecorded about a message others received. Record does not
// send it again, so it is never recorded twice.
func TestALostAcknowledgementHidesARecord(t *testing.T) {
	wstest.CheckGoroutines(t)
	ns := newJetStreamServer(t)
	px := tcpproxy.New(t, ns.url()[len("nats://"):])
	ncA := connect(t, "nats://"+px.Addr())
	a := newBroker(t, ncA, natsbroker.WithHistory(wsroom.DefaultHistorySize, time.Minute))
	b := newBroker(t, connect(t, ns.url()), natsbroker.WithHistory(wsroom.DefaultHistorySize, time.Minute))
	in := brokertest.NewRecordedInbox(8)
	defer brokertest.SubscribeRecorded(t, b, "lost", in.Deliver)()
	// a's own subscription keeps the room's last record known to a, so
	// that its next Record publishes at once, without reading it first.
	defer brokertest.SubscribeRecorded(t, a, "lost", func(wsroom.Position, []byte) {})()
	first := record(t, a, "lost", 1)[0]
	in.Next(t)

	px.Stall()
	if _, err := a.Record("lost", []byte(`{"lost":true}`)); err == nil {
		t.Fatal("Record succeeded without its acknowledgement")
	}
	got := in.Next(t)
	if got.Position.Offset != first.Offset+1 || string(got.Payload) != `{"lost":true}` {
		t.Fatalf("b got %+v %s", got.Position, got.Payload)
	}
	msgs, _, complete := history(t, b, "lost", first, 10)
	if !complete || len(msgs) != 1 || string(msgs[0].Payload) != `{"lost":true}` {
		t.Fatalf("history after the failed record: %+v, complete %v; want it, once", msgs, complete)
	}

	px.Down()
	wstest.WaitFor(t, "a to notice it is cut off", func() bool { return !ncA.IsConnected() })
	px.Up()
	awaitHistory(t, a)
	if next := record(t, a, "lost", 1)[0]; next.Offset != first.Offset+2 {
		t.Fatalf("a's next record at %+v, want offset %d", next, first.Offset+2)
	}
}

// Deleting the stream loses every room's history: the next record makes
// the stream again and starts the room over at offset 1 in a new epoch,
// which a recorded subscription delivers as a gap, and positions of the
// old epoch are never complete again.
func TestADeletedStreamIsMadeAgainAndRoomsStartNewEpochs(t *testing.T) {
	wstest.CheckGoroutines(t)
	ns := newJetStreamServer(t)
	a, b := historyPair(t, ns)
	in := brokertest.NewRecordedInbox(8)
	defer brokertest.SubscribeRecorded(t, b, "reset", in.Deliver)()
	old := record(t, a, "reset", 3)[2]
	for range 3 {
		in.Next(t)
	}
	js, err := jetstream.New(connect(t, ns.url()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wstest.Timeout)
	defer cancel()
	if err := js.DeleteStream(ctx, "wsroom_history"); err != nil {
		t.Fatal(err)
	}
	// Right after the delete the server may still be removing the old
	// stream's files and refuse to make it again ("error creating store
	// for stream", code 500): that record fails, and the next makes it.
	var pos wsroom.Position
	wstest.WaitFor(t, "a record to make the stream again", func() bool {
		pos, err = a.Record("reset", []byte(`{"i":0}`))
		return err == nil
	})
	if pos.Offset != 1 || pos.Epoch == old.Epoch {
		t.Fatalf("first record after the reset at %+v, want offset 1 of a new epoch", pos)
	}
	if got := in.Next(t); got.Position != pos {
		t.Fatalf("b got %+v, want %+v", got.Position, pos)
	}
	if s := b.Stats(); s.Gaps != 1 {
		t.Fatalf("stats %+v: want the new epoch counted as one gap", s)
	}
	if msgs, epoch, complete := history(t, b, "reset", old, 10); complete || len(msgs) != 0 || epoch != pos.Epoch {
		t.Fatalf("since the old epoch: %d messages, epoch %q, complete %v", len(msgs), epoch, complete)
	}
}

// WithHistory needs JetStream, and New says so at once; without the
// option a Broker works on a server without JetStream, and only Record
// fails.
func TestHistoryNeedsJetStream(t *testing.T) {
	wstest.CheckGoroutines(t)
	ns := newServer(t)
	_, err := natsbroker.New(context.Background(), connect(t, ns.url()), natsbroker.WithHistory(10, time.Minute))
	if err == nil || !strings.Contains(err.Error(), "JetStream enabled") {
		t.Fatalf("New with history on a server without JetStream: %v", err)
	}
	b := newBroker(t, connect(t, ns.url()))
	if err := b.Publish("plain", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Record("plain", []byte(`{}`)); err == nil {
		t.Fatal("Record without JetStream succeeded")
	} else {
		t.Log(err)
	}
}

// awaitHistory waits until b, reconnected, answers History again: its
// status watcher has seen the connection back, so Record works too.
func awaitHistory(t testing.TB, b *natsbroker.Broker) {
	t.Helper()
	wstest.WaitFor(t, "the broker to answer History again", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), wstest.Timeout)
		defer cancel()
		_, _, _, err := b.History(ctx, "probe", wsroom.Position{}, 0)
		return err == nil
	})
}

// A recorded subscription made while the connection is down is ready at
// once. Once the connection is back it receives records with no user
// code, and from the first one on every later one, once, in order.
func TestRecordedSubscriptionMadeDuringAnOutageDeliversOnceBack(t *testing.T) {
	wstest.CheckGoroutines(t)
	ns := newJetStreamServer(t)
	px := tcpproxy.New(t, ns.url()[len("nats://"):])
	a := newBroker(t, connect(t, ns.url()), natsbroker.WithHistory(wsroom.DefaultHistorySize, time.Minute))
	ncB := connect(t, "nats://"+px.Addr())
	b := newBroker(t, ncB, natsbroker.WithHistory(wsroom.DefaultHistorySize, time.Minute))
	record(t, a, "late", 2)

	px.Down()
	wstest.WaitFor(t, "b to notice it is cut off", func() bool { return !ncB.IsConnected() })
	got := make(chan wsroom.Position, 1024)
	cancel, ready := b.SubscribeRecorded("late", func(pos wsroom.Position, _ []byte) { got <- pos })
	defer cancel()
	select {
	case <-ready:
	default:
		t.Fatal("ready not closed at once during the outage")
	}
	record(t, a, "late", 1) // before b's subscription is on the server

	px.Up()
	var first wsroom.Position
	wstest.WaitFor(t, "b's subscription to deliver a record", func() bool {
		record(t, a, "late", 1)
		select {
		case first = <-got:
			return true
		case <-time.After(20 * time.Millisecond):
			return false
		}
	})
	want := record(t, a, "late", 3)[2]
	for prev := first; prev != want; {
		select {
		case pos := <-got:
			if pos.Offset != prev.Offset+1 || pos.Epoch != prev.Epoch {
				t.Fatalf("%+v after %+v", pos, prev)
			}
			prev = pos
		case <-time.After(wstest.Timeout):
			t.Fatalf("nothing after %+v, want up to %+v", prev, want)
		}
	}
}
