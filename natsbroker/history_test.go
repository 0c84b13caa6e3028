package natsbroker_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/brokertest"
	"github.com/wsroom/wsroom/internal/wstest"
	"github.com/wsroom/wsroom/natsbroker"
)

func TestHistoryBrokerPassesTheHistoryContract(t *testing.T) {
	wstest.CheckGoroutines(t)
	brokertest.RunHistory(t, historyPairOn(newJetStreamServer(t)))
}

func TestHistoryBrokerPassesTheBrokerContract(t *testing.T) {
	wstest.CheckGoroutines(t)
	ns := newJetStreamServer(t)
	brokertest.Run(t, func(t *testing.T) (wsroom.Broker, wsroom.Broker) {
		a, b := historyPair(t, ns)
		return a, b
	})
}

// historyPairOn returns history brokers standing for two processes, each
// with its own connection to ns.
func historyPairOn(ns *natsServer) brokertest.HistoryPair {
	return func(t *testing.T) (wsroom.HistoryBroker, wsroom.HistoryBroker) {
		a, b := historyPair(t, ns)
		return a, b
	}
}

func historyPair(tb testing.TB, ns *natsServer, opts ...natsbroker.Option) (a, b *natsbroker.Broker) {
	opts = append([]natsbroker.Option{natsbroker.WithHistory(wsroom.DefaultHistorySize, time.Minute)}, opts...)
	return newBroker(tb, connect(tb, ns.url()), opts...), newBroker(tb, connect(tb, ns.url()), opts...)
}

// record records n messages {"i":0}... into room through b, failing the
// test on an error, and returns their positions.
func record(t testing.TB, b wsroom.HistoryBroker, room string, n int) []wsroom.Position {
	t.Helper()
	var out []wsroom.Position
	for i := range n {
		pos, err := b.Record(room, fmt.Appendf(nil, `{"i":%d}`, i))
		if err != nil {
			t.Fatalf("record %d in %q: %v", i, room, err)
		}
		out = append(out, pos)
	}
	return out
}

// history calls b.History with a deadline, failing the test on an error.
func history(t testing.TB, b wsroom.HistoryBroker, room string, since wsroom.Position, limit int) ([]wsroom.Recorded, string, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wstest.Timeout)
	defer cancel()
	msgs, epoch, complete, err := b.History(ctx, room, since, limit)
	if err != nil {
		t.Fatalf("history of %q since %+v: %v", room, since, err)
	}
	return msgs, epoch, complete
}

// Processes that record into one room at once race for each offset:
// JetStream takes one record per expected last sequence, the losers read
// the room's last record and try again. Every offset is taken once, from
// 1 without a gap, whatever the race: the stream holds each message once,
// at the offset its Record returned. A process that keeps losing for 2
// seconds (the winner of a round publishes its next record at once, a
// loser reads first) gets an error: under load that happens, and the
// test counts it rather than failing, as long as the stream is right.
func TestConcurrentRecordersTakeEveryOffsetOnce(t *testing.T) {
	wstest.CheckGoroutines(t)
	const procs, each = 4, 150
	ns := newJetStreamServer(t)
	brokers := make([]*natsbroker.Broker, procs)
	for i := range brokers {
		brokers[i] = newBroker(t, connect(t, ns.url()), natsbroker.WithHistory(wsroom.DefaultHistorySize, time.Minute))
		// A subscription keeps each process hearing the others' records.
		defer brokertest.SubscribeRecorded(t, brokers[i], "race", func(wsroom.Position, []byte) {})()
	}
	var mu sync.Mutex
	returned := map[uint64]string{} // offset → payload, as Record returned them
	failed := 0
	var wg sync.WaitGroup
	for i, b := range brokers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range each {
				payload := fmt.Sprintf(`{"p":%d,"n":%d}`, i, n)
				pos, err := b.Record("race", []byte(payload))
				mu.Lock()
				if err != nil {
					failed++
				} else if old, dup := returned[pos.Offset]; dup {
					t.Errorf("offset %d returned for %s and %s", pos.Offset, old, payload)
				} else {
					returned[pos.Offset] = payload
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	stored, _, complete := history(t, brokers[0], "race", wsroom.Position{Epoch: mustEpoch(t, brokers[0], "race")}, 2*procs*each)
	seen := map[string]bool{}
	for i, m := range stored {
		p := string(m.Payload)
		if m.Position.Offset != uint64(i+1) || seen[p] {
			t.Fatalf("stored %d: %s at %+v (twice: %v)", i, p, m.Position, seen[p])
		}
		seen[p] = true
		if want, ok := returned[m.Position.Offset]; ok && want != p {
			t.Fatalf("offset %d holds %s, Record returned it for %s", m.Position.Offset, p, want)
		}
	}
	if !complete || len(stored) < len(returned) || len(stored) > procs*each {
		t.Fatalf("%d stored (complete %v), %d records returned a position", len(stored), complete, len(returned))
	}
	var conflicts int64
	for _, b := range brokers {
		conflicts += b.Stats().Conflicts
	}
	t.Logf("%d records by %d processes at once: %d conflicts (%.2f retries per record), %d failed after 2 s of losing",
		procs*each, procs, conflicts, float64(conflicts)/float64(procs*each), failed)
}

// MaxMsgsPerSubject trims each room exactly: the last size records stay,
// older ones are gone, and History says so.
func TestHistoryKeepsExactlyTheLastSizeRecordsOfEachRoom(t *testing.T) {
	wstest.CheckGoroutines(t)
	ns := newJetStreamServer(t)
	a, b := historyPair(t, ns, natsbroker.WithHistory(5, time.Minute))
	pos := record(t, a, "trim", 8)
	record(t, a, "other", 3) // rooms are trimmed each on its own
	epoch := pos[0].Epoch
	if msgs, e, complete := history(t, b, "trim", wsroom.Position{Offset: 3, Epoch: epoch}, 100); !complete || e != epoch ||
		len(msgs) != 5 || msgs[0].Position.Offset != 4 || string(msgs[4].Payload) != `{"i":7}` {
		t.Fatalf("since 3: %v %q %v, want offsets 4..8 complete", msgs, e, complete)
	}
	if msgs, _, complete := history(t, b, "trim", wsroom.Position{Offset: 2, Epoch: epoch}, 100); complete || len(msgs) != 0 {
		t.Fatalf("since 2, trimmed: %d messages, complete %v; want none, incomplete", len(msgs), complete)
	}
	if msgs, _, complete := history(t, b, "other", wsroom.Position{Offset: 0, Epoch: mustEpoch(t, b, "other")}, 100); !complete || len(msgs) != 3 {
		t.Fatalf("the other room: %d messages, complete %v", len(msgs), complete)
	}
}

// mustEpoch returns room's current epoch as History reports it.
func mustEpoch(t testing.TB, b wsroom.HistoryBroker, room string) string {
	t.Helper()
	_, epoch, _ := history(t, b, room, wsroom.Position{}, 0)
	return epoch
}

// MaxAge expires each record ttl after it was recorded, whether or not
// the room is busy; once a room's last record has expired its history is
// lost, and its next record starts a new epoch at offset 1.
func TestRecordsExpireEachAfterTheTTLAndTheRoomStartsANewEpoch(t *testing.T) {
	wstest.CheckGoroutines(t)
	ns := newJetStreamServer(t)
	const ttl = time.Second
	a, b := historyPair(t, ns, natsbroker.WithHistory(wsroom.DefaultHistorySize, ttl))
	first := record(t, a, "ttl", 3)[2]
	wstest.WaitFor(t, "the room's records to expire", func() bool {
		_, epoch, _ := history(t, b, "ttl", first, 100)
		return epoch != first.Epoch
	})
	next := record(t, a, "ttl", 1)[0]
	if next.Offset != 1 || next.Epoch == first.Epoch {
		t.Fatalf("record after expiry at %+v, want offset 1 of a new epoch (was %+v)", next, first)
	}
	if msgs, _, complete := history(t, b, "ttl", first, 100); complete || len(msgs) != 0 {
		t.Fatalf("since a position of the lost epoch: %d messages, complete %v", len(msgs), complete)
	}
}

// Publish stays on core NATS: nothing it sends is in the history, and
// records never reach Subscribe.
func TestPublishesAreNeverRecorded(t *testing.T) {
	wstest.CheckGoroutines(t)
	ns := newJetStreamServer(t)
	a, b := historyPair(t, ns)
	in := brokertest.NewInbox(16)
	defer brokertest.Subscribe(t, b, "mixed", in.Deliver)()
	rec := brokertest.NewRecordedInbox(16)
	defer brokertest.SubscribeRecorded(t, b, "mixed", rec.Deliver)()
	pos := record(t, a, "mixed", 1)[0]
	if err := a.Publish("mixed", []byte(`{"ephemeral":true}`)); err != nil {
		t.Fatal(err)
	}
	if got := in.Next(t); string(got) != `{"ephemeral":true}` {
		t.Fatalf("Subscribe got %s, want only the publish", got)
	}
	pos2 := record(t, a, "mixed", 1)[0]
	for _, want := range []wsroom.Position{pos, pos2} {
		if got := rec.Next(t); got.Position != want || string(got.Payload) != `{"i":0}` {
			t.Fatalf("SubscribeRecorded got %+v %s, want %+v", got.Position, got.Payload, want)
		}
	}
	msgs, _, complete := history(t, b, "mixed", wsroom.Position{Offset: 0, Epoch: pos.Epoch}, 100)
	if !complete || len(msgs) != 2 || msgs[1].Position != pos2 {
		t.Fatalf("history %+v, complete %v: want the two records only", msgs, complete)
	}
}

// A record that nats.go drops for a subscription whose deliver is busy
// (a slow consumer) is noticed at the room's next record: the
// subscription reads what it missed from the stream, and delivers every
// offset once, in order.
func TestRecordedSubscriptionCatchesUpWhatNATSDroppedForIt(t *testing.T) {
	wstest.CheckGoroutines(t)
	ns := newJetStreamServer(t)
	a, b := historyPair(t, ns)
	busy := make(chan struct{})
	var got []wsroom.Position
	var mu sync.Mutex
	defer brokertest.SubscribeRecorded(t, b, "slow", func(pos wsroom.Position, _ []byte) {
		if pos.Offset == 1 {
			<-busy
		}
		mu.Lock()
		got = append(got, pos)
		mu.Unlock()
	})()
	natsbroker.LimitRecordedPending(b, 2)
	record(t, a, "slow", 20)
	wstest.WaitFor(t, "nats.go to drop records for the busy subscription", func() bool { return b.Stats().DroppedSlow > 0 })
	close(busy)
	last := record(t, a, "slow", 1)[0]
	wstest.WaitFor(t, "every record delivered", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) > 0 && got[len(got)-1] == last
	})
	for i, pos := range got {
		if pos.Offset != uint64(i+1) || pos.Epoch != last.Epoch {
			t.Fatalf("delivery %d at %+v; all: %v", i, pos, got)
		}
	}
	if s := b.Stats(); s.CaughtUp == 0 || s.Gaps != 0 {
		t.Fatalf("stats %+v: want records caught up from the stream, no gap", s)
	}
}

// A cancelled recorded subscription gets nothing more while another of
// the room still does; Close ends them all, and then Record and
// SubscribeRecorded do nothing.
func TestCancelAndCloseEndRecordedSubscriptions(t *testing.T) {
	wstest.CheckGoroutines(t)
	ns := newJetStreamServer(t)
	a, b := historyPair(t, ns)
	live := brokertest.NewRecordedInbox(8)
	var gone atomic.Int64
	count := func(wsroom.Position, []byte) { gone.Add(1) }
	defer brokertest.SubscribeRecorded(t, b, "cancel", live.Deliver)()
	cancel := brokertest.SubscribeRecorded(t, b, "cancel", count)
	if s := b.Stats(); s.RecordedSubscriptions != 2 || s.Subscriptions != 0 {
		t.Fatalf("stats %+v with two recorded subscriptions", s)
	}
	cancel()
	cancel() // idempotent
	pos := record(t, a, "cancel", 1)[0]
	if got := live.Next(t); got.Position != pos {
		t.Fatalf("live subscription got %+v, want %+v", got.Position, pos)
	}
	record(t, a, "cancel", 1)
	live.Next(t)
	if n := gone.Load(); n != 0 {
		t.Fatalf("the cancelled subscription got %d records", n)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if s := b.Stats(); s.RecordedSubscriptions != 0 {
		t.Fatalf("%d recorded subscriptions after Close", s.RecordedSubscriptions)
	}
	if _, err := b.Record("cancel", []byte(`{}`)); !errors.Is(err, natsbroker.ErrClosed) {
		t.Fatalf("Record after Close: %v", err)
	}
	_, ready := b.SubscribeRecorded("cancel", count)
	select {
	case <-ready:
	default:
		t.Fatal("SubscribeRecorded after Close: ready not closed")
	}
}

// Room names of any bytes are recorded each in a history of their own:
// separators, wildcards and very long names never reach another room's
// subject, in the stream or on the republish.
func TestHostileRoomNamesKeepHistoriesApart(t *testing.T) {
	wstest.CheckGoroutines(t)
	names := []string{"plain", "", "a.b", "a.*", "*", ">", "a.>", "a b", "new\nline", "ümlaut-房间",
		"%2A", "%", "history", "recorded", "nul\x00byte", strings.Repeat("x", 100_000)}
	ns := newJetStreamServer(t)
	a, b := historyPair(t, ns)
	inboxes := make([]*brokertest.RecordedInbox, len(names))
	for i, name := range names {
		inboxes[i] = brokertest.NewRecordedInbox(len(names) + 1)
		defer brokertest.SubscribeRecorded(t, b, name, inboxes[i].Deliver)()
	}
	for i, name := range names {
		if _, err := a.Record(name, fmt.Appendf(nil, `{"room":%d}`, i)); err != nil {
			t.Fatalf("record in room %d: %v", i, err)
		}
	}
	for i, name := range names {
		got := inboxes[i].Next(t)
		if got.Position.Offset != 1 || string(got.Payload) != fmt.Sprintf(`{"room":%d}`, i) {
			t.Fatalf("room %d got %+v %s", i, got.Position, got.Payload)
		}
		msgs, _, complete := history(t, b, name, wsroom.Position{Epoch: got.Position.Epoch}, 10)
		if !complete || len(msgs) != 1 || string(msgs[0].Payload) != string(got.Payload) {
			t.Fatalf("room %d's history: %+v, complete %v", i, msgs, complete)
		}
	}
}
