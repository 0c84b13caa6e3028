package natsbroker_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/brokertest"
	"github.com/wsroom/wsroom/internal/wstest"
	"github.com/wsroom/wsroom/natsbroker"
)

// prefixes numbers the prefixes of presence tests, so that tests sharing
// a server have streams of their own.
var prefixes atomic.Int64

// uniquePrefix returns a subject prefix no other test of this process
// uses.
func uniquePrefix() string { return fmt.Sprint("ptest", prefixes.Add(1)) }

// presencePair returns brokertest's PresencePair: two processes, each
// with its own connection to ns, with a prefix of their own.
func presencePair(ns *natsServer) brokertest.PresencePair {
	return func(t *testing.T) (wsroom.PresenceBroker, wsroom.PresenceBroker) {
		p := natsbroker.WithPrefix(uniquePrefix())
		return newBroker(t, connect(t, ns.url()), p, natsbroker.WithPresence()),
			newBroker(t, connect(t, ns.url()), p, natsbroker.WithPresence())
	}
}

func TestPresenceContract(t *testing.T) {
	wstest.CheckGoroutines(t)
	brokertest.RunPresence(t, presencePair(newJetStreamServer(t)))
}

// A NATS restart that keeps JetStream's store announces no live member
// gone, and presence converges once NATS is back: the entries come back
// expired, and still nobody claims them, since every instance renews its
// own first.
func TestPresenceAcrossANATSRestartThatKeepsItsStore(t *testing.T) {
	wstest.CheckGoroutines(t)
	ns := newJetStreamServer(t)
	brokertest.PresenceOutage(t, presencePair(ns), ns.stop, ns.start)
}

// The same when the server comes back with an empty store: the presence
// stream is gone, and the instances make it again and put their entries
// back.
func TestPresenceAcrossANATSRestartThatLosesItsStore(t *testing.T) {
	wstest.CheckGoroutines(t)
	ns := newJetStreamServer(t)
	brokertest.PresenceOutage(t, presencePair(ns), ns.stop, func() {
		ns.storeDir = t.TempDir()
		ns.start()
	})
}

// Entry IDs with what a subject must not carry stay apart: each is read,
// refreshed, dropped and claimed as itself.
func TestPresenceKeepsHostileIDsApart(t *testing.T) {
	wstest.CheckGoroutines(t)
	a, b := presencePair(newJetStreamServer(t))(t)
	ids := []string{"a.b", "a.*", "*", ">", "a.>", "a b", "ümlaut-房间", "%2E", "a%2Eb", "tab\tnul\x00", strings.Repeat("x", 300)}
	var recs []wsroom.PresenceRecord
	for i, id := range ids {
		recs = append(recs, wsroom.PresenceRecord{ID: id, Owner: "o", Key: fmt.Sprint("key ", i, " .*>"), Joined: time.Now().UTC()})
	}
	if err := a.PutPresence("r.*", recs, time.Minute); err != nil {
		t.Fatal(err)
	}
	if got := readIDs(t, b, "r.*"); got != fmt.Sprint(sorted(ids)) {
		t.Fatalf("read %s, want %v", got, sorted(ids))
	}
	missing, err := a.RefreshPresence("r.*", ids, time.Millisecond)
	if err != nil || len(missing) != 0 {
		t.Fatalf("refresh: %v missing, %v", missing, err)
	}
	if err := a.DropPresence("r.*", ids[:1]); err != nil {
		t.Fatal(err)
	}
	wstest.WaitFor(t, "the refreshed entries to expire", func() bool { return readIDs(t, b, "r.*") == "[]" })
	got, err := b.ClaimExpired(context.Background(), "r.*")
	if err != nil || len(got) != len(ids)-1 {
		t.Fatalf("claimed %d (%v), want all but the dropped one", len(got), err)
	}
	for _, x := range got {
		if x.ID == ids[0] {
			t.Fatalf("claimed %q, which was dropped", x.ID)
		}
	}
}

// Members whose keys and room carry what a subject must not are present
// on both instances as themselves.
func TestPresenceOfHostileKeysInAHostileRoomAcrossInstances(t *testing.T) {
	wstest.CheckGoroutines(t)
	a, b := presencePair(newJetStreamServer(t))(t)
	A, B := brokertest.StartPresenceInstance(t, a, brokertest.TestLease), brokertest.StartPresenceInstance(t, b, brokertest.TestLease)
	const room = "r.*> ü"
	keys := []string{"a.b", "*", ">", "a.>", "a b", "ümlaut-房间", "%2E"}
	var want []string
	for i, k := range keys {
		in := A
		if i%2 == 1 {
			in = B
		}
		brokertest.DialPresence(t, in.URL, url.PathEscape(room), k)
		want = append(want, k+":1")
	}
	brokertest.AwaitPresence(t, time.Second, room, sorted(want), A.Rooms, B.Rooms)
	brokertest.AwaitPresence(t, time.Second, "r", nil, A.Rooms, B.Rooms)
}

// readIDs returns the sorted IDs of room's entries on b.
func readIDs(t *testing.T, b wsroom.PresenceBroker, room string) string {
	t.Helper()
	recs, err := b.ReadPresence(context.Background(), room)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, x := range recs {
		ids = append(ids, x.ID)
	}
	return fmt.Sprint(sorted(ids))
}

// A Broker keeps presence only WithPresence, which New refuses on a
// server without JetStream; without it, wsroom keeps presence per
// instance, and says nothing is wrong.
func TestPresenceIsOptInAndRefusedWithoutJetStream(t *testing.T) {
	wstest.CheckGoroutines(t)
	ns := newServer(t)
	nc := connect(t, ns.url())
	if _, err := natsbroker.New(t.Context(), nc, natsbroker.WithPresence()); err == nil || !strings.Contains(err.Error(), "JetStream enabled") {
		t.Fatalf("New WithPresence without JetStream: %v, want a refusal that names JetStream", err)
	}
	b := newBroker(t, nc)
	if b.KeepsPresence() {
		t.Fatal("a Broker made without WithPresence keeps presence")
	}
	in := brokertest.StartPresenceInstance(t, b, brokertest.TestLease)
	ann := brokertest.DialPresence(t, in.URL, "r", "ann")
	if who, err := brokertest.Who(in.Rooms, "r"); err != nil || fmt.Sprint(who) != "[ann:1]" {
		t.Fatalf("Presence returned %v, %v; want [ann:1] and no error", who, err)
	}
	ann.Close()
	wstest.WaitFor(t, "ann to leave", func() bool { return in.Rooms.Stats().Present == 0 })
	if st := in.Rooms.Stats(); st.PresenceErrors != 0 {
		t.Fatalf("%d presence errors with a Broker that keeps no presence", st.PresenceErrors)
	}
}

// While the connection is down, the calls that must be bounded fail at
// once with ErrNotConnected, and so do reads.
func TestPresenceFailsAtOnceWhileDisconnected(t *testing.T) {
	wstest.CheckGoroutines(t)
	ns := newJetStreamServer(t)
	nc := connect(t, ns.url())
	b := newBroker(t, nc, natsbroker.WithPresence())
	rec := []wsroom.PresenceRecord{{ID: "x", Owner: "o", Key: "k"}}
	if err := b.PutPresence("r", rec, time.Minute); err != nil {
		t.Fatal(err)
	}
	ns.stop()
	wstest.WaitFor(t, "the connection to notice", func() bool { return !nc.IsConnected() })
	began := time.Now()
	errs := []error{b.PutPresence("r", rec, time.Minute), b.DropPresence("r", []string{"x"})}
	_, err := b.RefreshPresence("r", []string{"x"}, time.Minute)
	errs = append(errs, err)
	_, err = b.ReadPresence(context.Background(), "r")
	errs = append(errs, err)
	_, err = b.ClaimExpired(context.Background(), "r")
	errs = append(errs, err)
	took := time.Since(began)
	for i, err := range errs {
		if !errors.Is(err, natsbroker.ErrNotConnected) {
			t.Fatalf("call %d while disconnected: %v, want ErrNotConnected", i, err)
		}
	}
	if took > 100*time.Millisecond {
		t.Fatalf("the calls took %v while disconnected, want at once", took)
	}
	ns.start()
}

// sorted returns s sorted.
func sorted(s []string) []string { return slices.Sorted(slices.Values(s)) }
