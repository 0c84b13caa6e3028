package brokertest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/wstest"
)

// HistoryPair returns two HistoryBrokers standing for two processes that
// share one server; they are closed at the test's cleanup.
type HistoryPair func(t *testing.T) (a, b wsroom.HistoryBroker)

// RunHistory checks the HistoryBroker contract on brokers from pair, each
// part a subtest: one order of positions for every process, a recorded
// subscription in effect once ready, history after a position, and
// recovery on two complete wsroom instances. Run the Broker contract (Run)
// too: a HistoryBroker is a Broker.
func RunHistory(t *testing.T, pair HistoryPair) {
	t.Run("OneOrderEverywhere", func(t *testing.T) { oneOrderEverywhere(t, pair) })
	t.Run("ReadyMeansSubscribedRecorded", func(t *testing.T) { readyMeansSubscribedRecorded(t, pair) })
	t.Run("HistoryAfterAPosition", func(t *testing.T) { historyAfter(t, pair) })
	t.Run("RecoveryAcrossInstances", func(t *testing.T) { RecoveryAcrossInstances(t, pair, 100) })
}

// RecordedInbox records what a recorded subscription delivers.
type RecordedInbox struct{ ch chan wsroom.Recorded }

// NewRecordedInbox returns an inbox holding up to n messages.
func NewRecordedInbox(n int) *RecordedInbox {
	return &RecordedInbox{ch: make(chan wsroom.Recorded, n)}
}

// Deliver is the func to hand SubscribeRecorded.
func (in *RecordedInbox) Deliver(pos wsroom.Position, p []byte) {
	in.ch <- wsroom.Recorded{Position: pos, Payload: append([]byte(nil), p...)}
}

// Next returns the next message, failing the test after wstest.Timeout.
func (in *RecordedInbox) Next(t testing.TB) wsroom.Recorded {
	t.Helper()
	select {
	case r := <-in.ch:
		return r
	case <-time.After(wstest.Timeout):
		t.Fatal("no recorded message within", wstest.Timeout)
		return wsroom.Recorded{}
	}
}

// SubscribeRecorded subscribes deliver to room's recorded messages on b and
// waits for ready, failing the test if it is not closed within
// wsroom.BrokerReadyTimeout. It returns the cancel func.
func SubscribeRecorded(t testing.TB, b wsroom.HistoryBroker, room string, deliver func(wsroom.Position, []byte)) (cancel func()) {
	t.Helper()
	cancel, ready := b.SubscribeRecorded(room, deliver)
	select {
	case <-ready:
	case <-time.After(wsroom.BrokerReadyTimeout):
		t.Fatalf("recorded subscription to %q not ready within %v", room, wsroom.BrokerReadyTimeout)
	}
	return cancel
}

// oneOrderEverywhere: two processes record into one room at once; both
// subscriptions, the recorders' own included, receive every message once,
// at consecutive offsets of one epoch, in the same order, byte for byte,
// and each recorder's positions increase.
func oneOrderEverywhere(t *testing.T, pair HistoryPair) {
	const each = 500
	a, b := pair(t)
	inA, inB := NewRecordedInbox(4*each), NewRecordedInbox(4*each)
	defer SubscribeRecorded(t, a, "order", inA.Deliver)()
	defer SubscribeRecorded(t, b, "order", inB.Deliver)()
	var wg sync.WaitGroup
	for name, br := range map[string]wsroom.HistoryBroker{"a": a, "b": b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var last uint64
			for i := range each {
				pos, err := br.Record("order", fmt.Appendf(nil, `{"from":%q,"i":%d}`, name, i))
				if err != nil {
					t.Errorf("%s: record %d: %v", name, i, err)
					return
				}
				if pos.Offset <= last {
					t.Errorf("%s: offset %d after %d", name, pos.Offset, last)
				}
				last = pos.Offset
			}
		}()
	}
	wg.Wait()
	var first wsroom.Position
	for i := range 2 * each {
		x, y := inA.Next(t), inB.Next(t)
		if i == 0 {
			first = x.Position
		}
		want := wsroom.Position{Offset: first.Offset + uint64(i), Epoch: first.Epoch}
		if x.Position != want || y.Position != want || string(x.Payload) != string(y.Payload) {
			t.Fatalf("message %d: a got %+v %s, b got %+v %s; want both at %+v, the same", i, x.Position, x.Payload, y.Position, y.Payload, want)
		}
	}
}

// readyMeansSubscribedRecorded: once a recorded subscription's ready is
// closed, the next record from another process reaches it.
func readyMeansSubscribedRecorded(t *testing.T, pair HistoryPair) {
	const rounds = 100
	a, b := pair(t)
	in := NewRecordedInbox(4)
	for i := range rounds {
		room := fmt.Sprintf("recorded-ready-%d", i)
		cancel := SubscribeRecorded(t, b, room, in.Deliver)
		want := fmt.Sprintf(`{"round":%d}`, i)
		pos, err := a.Record(room, []byte(want))
		if err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		if got := in.Next(t); string(got.Payload) != want || got.Position != pos {
			t.Fatalf("round %d: got %+v %s, want %+v %s", i, got.Position, got.Payload, pos, want)
		}
		cancel()
	}
}

// historyAfter: History returns what was recorded after a position, in
// order, says when it is not all of it, and knows no other epoch.
func historyAfter(t *testing.T, pair HistoryPair) {
	a, b := pair(t)
	var positions []wsroom.Position
	for i := range 50 {
		pos, err := a.Record("history", fmt.Appendf(nil, `{"i":%d}`, i))
		if err != nil {
			t.Fatal(err)
		}
		positions = append(positions, pos)
	}
	epoch := positions[0].Epoch
	ctx, cancel := context.WithTimeout(context.Background(), wstest.Timeout)
	defer cancel()
	check := func(since wsroom.Position, limit, want int, wantComplete bool) {
		t.Helper()
		msgs, gotEpoch, complete, err := b.History(ctx, "history", since, limit)
		if err != nil {
			t.Fatalf("since %+v: %v", since, err)
		}
		if gotEpoch != epoch || complete != wantComplete || len(msgs) != want {
			t.Fatalf("since %+v, limit %d: %d messages, epoch %q, complete %v; want %d, %q, %v",
				since, limit, len(msgs), gotEpoch, complete, want, epoch, wantComplete)
		}
		for i, m := range msgs {
			if m.Position.Offset != since.Offset+1+uint64(i) || m.Position.Epoch != epoch ||
				string(m.Payload) != fmt.Sprintf(`{"i":%d}`, m.Position.Offset-positions[0].Offset) {
				t.Fatalf("since %+v: message %d is %+v %s", since, i, m.Position, m.Payload)
			}
		}
	}
	base := positions[0].Offset - 1
	check(wsroom.Position{Offset: base + 10, Epoch: epoch}, 1000, 40, true)
	check(wsroom.Position{Offset: base, Epoch: epoch}, 1000, 50, true)
	check(wsroom.Position{Offset: base + 50, Epoch: epoch}, 1000, 0, true)
	check(wsroom.Position{Offset: base + 10, Epoch: epoch}, 10, 10, false)
	check(wsroom.Position{Offset: base + 10, Epoch: epoch + "x"}, 1000, 0, false)
	check(wsroom.Position{Offset: base + 51, Epoch: epoch}, 1000, 0, false)
}
