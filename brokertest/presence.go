package brokertest

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/wstest"
)

// PresencePair returns two PresenceBrokers standing for two processes that
// share one server; they are closed at the test's cleanup.
type PresencePair func(t *testing.T) (a, b wsroom.PresenceBroker)

// RunPresence checks the PresenceBroker contract on brokers from pair,
// each part a subtest: entries put by one process are read, byte for
// byte, by the other and gone once dropped; a lease runs out, and a
// refresh extends it; every expired entry is claimed exactly once while
// both processes claim at once; rooms are kept apart whatever their
// names; and, on two complete wsroom instances, presence across them, a
// dead process's members announced gone once, and no live member
// announced gone across an outage of the bus (see PresenceOutage, which
// needs funcs to stop and start the server). Run the Broker contract
// (Run) too: a PresenceBroker is a Broker.
func RunPresence(t *testing.T, pair PresencePair) {
	t.Run("PutReadDrop", func(t *testing.T) { putReadDrop(t, pair) })
	t.Run("LeaseRunsOut", func(t *testing.T) { leaseRunsOut(t, pair) })
	t.Run("RefreshExtendsTheLease", func(t *testing.T) { refreshExtends(t, pair) })
	t.Run("ClaimIsExactlyOnce", func(t *testing.T) { claimIsExactlyOnce(t, pair) })
	t.Run("KeepsRoomsApartWhateverTheirNames", func(t *testing.T) { presenceRoomsApart(t, pair) })
	t.Run("PresenceAcrossInstances", func(t *testing.T) { PresenceAcrossInstances(t, pair) })
	t.Run("DeadProcessAnnouncedOnce", func(t *testing.T) { DeadProcessAnnouncedOnce(t, pair, 20) })
}

// record returns an entry of owner's, for key, with a leave message.
func record(owner, id, key string) wsroom.PresenceRecord {
	return wsroom.PresenceRecord{
		ID: owner + "-" + id, Owner: owner, Key: key,
		Meta:   []byte(fmt.Sprintf(`{"avatar":"%s.png","n":[1,2]}`, key)),
		Leave:  []byte(fmt.Sprintf(`{"type":"left","from":%q}`, key)),
		Joined: time.Date(2026, 1, 2, 3, 4, 5, 678901234, time.UTC),
	}
}

// sameRecords reports whether got and want hold the same entries, in any
// order, field for field.
func sameRecords(got, want []wsroom.PresenceRecord) bool {
	if len(got) != len(want) {
		return false
	}
	byID := func(x, y wsroom.PresenceRecord) int { return bytes.Compare([]byte(x.ID), []byte(y.ID)) }
	got, want = slices.Clone(got), slices.Clone(want)
	slices.SortFunc(got, byID)
	slices.SortFunc(want, byID)
	for i := range got {
		g, w := got[i], want[i]
		if g.ID != w.ID || g.Owner != w.Owner || g.Key != w.Key || !bytes.Equal(g.Meta, w.Meta) ||
			!bytes.Equal(g.Leave, w.Leave) || !g.Joined.Equal(w.Joined) {
			return false
		}
	}
	return true
}

// read returns room's entries on b, failing the test on an error.
func read(t testing.TB, b wsroom.PresenceBroker, room string) []wsroom.PresenceRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wstest.Timeout)
	defer cancel()
	recs, err := b.ReadPresence(ctx, room)
	if err != nil {
		t.Fatalf("ReadPresence(%q): %v", room, err)
	}
	return recs
}

// claim claims room's expired entries on b, failing the test on an error.
func claim(t testing.TB, b wsroom.PresenceBroker, room string) []wsroom.PresenceRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wstest.Timeout)
	defer cancel()
	recs, err := b.ClaimExpired(ctx, room)
	if err != nil {
		t.Fatalf("ClaimExpired(%q): %v", room, err)
	}
	return recs
}

// put puts entries in room on b, failing the test on an error.
func put(t testing.TB, b wsroom.PresenceBroker, room string, lease time.Duration, recs ...wsroom.PresenceRecord) {
	t.Helper()
	if err := b.PutPresence(room, recs, lease); err != nil {
		t.Fatalf("PutPresence(%q): %v", room, err)
	}
}

// putReadDrop: what one process puts the other reads, all fields intact,
// a put of the same ID replaces, and a drop removes (an unknown ID is no
// error).
func putReadDrop(t *testing.T, pair PresencePair) {
	a, b := pair(t)
	ann, bob, bob2 := record("a1", "1", "ann"), record("a1", "2", "bob"), record("b1", "1", "bob")
	bob2.Meta = nil // no metadata, and no leave message
	bob2.Leave = nil
	put(t, a, "pr", time.Minute, ann, bob)
	put(t, b, "pr", time.Minute, bob2)
	if got := read(t, b, "pr"); !sameRecords(got, []wsroom.PresenceRecord{ann, bob, bob2}) {
		t.Fatalf("b read %+v, want what a and b put", got)
	}
	ann.Meta = []byte(`{"avatar":"new.png"}`)
	put(t, a, "pr", time.Minute, ann)
	if err := a.DropPresence("pr", []string{bob.ID, "no-such-id"}); err != nil {
		t.Fatalf("DropPresence: %v", err)
	}
	if got := read(t, b, "pr"); !sameRecords(got, []wsroom.PresenceRecord{ann, bob2}) {
		t.Fatalf("after a replaced ann and dropped bob, b read %+v", got)
	}
	if got := claim(t, b, "pr"); len(got) != 0 {
		t.Fatalf("claimed %+v while every lease runs", got)
	}
}

// leaseRunsOut: an entry whose lease has run out is no longer read, is
// claimed once, and is then gone.
func leaseRunsOut(t *testing.T, pair PresencePair) {
	a, b := pair(t)
	x, y := record("a1", "1", "ann"), record("a1", "2", "bob")
	put(t, a, "lease", time.Minute, x, y)
	if got := read(t, b, "lease"); !sameRecords(got, []wsroom.PresenceRecord{x, y}) {
		t.Fatalf("read %+v, want both entries", got)
	}
	put(t, a, "lease", time.Millisecond, x) // x's new lease runs out at once
	wstest.WaitFor(t, "x's lease to run out", func() bool { return len(read(t, b, "lease")) == 1 })
	if got := read(t, b, "lease"); !sameRecords(got, []wsroom.PresenceRecord{y}) {
		t.Fatalf("read %+v, want y alone", got)
	}
	if got := claim(t, b, "lease"); !sameRecords(got, []wsroom.PresenceRecord{x}) {
		t.Fatalf("claimed %+v, want x", got)
	}
	if got := claim(t, a, "lease"); len(got) != 0 {
		t.Fatalf("x claimed again: %+v", got)
	}
}

// refreshExtends: refreshing an entry keeps it from expiring when its
// first lease runs out, and names the IDs the broker does not hold.
func refreshExtends(t *testing.T, pair PresencePair) {
	a, b := pair(t)
	x := record("a1", "1", "ann")
	put(t, a, "refresh", time.Millisecond, x)
	missing, err := a.RefreshPresence("refresh", []string{x.ID, "a1-unknown"}, time.Minute)
	if err != nil || fmt.Sprint(missing) != "[a1-unknown]" {
		t.Fatalf("RefreshPresence returned %v, %v; want [a1-unknown] missing", missing, err)
	}
	start := time.Now()
	wstest.WaitFor(t, "the first lease to pass", func() bool { return time.Since(start) > 20*time.Millisecond })
	if got := claim(t, b, "refresh"); len(got) != 0 {
		t.Fatalf("claimed %+v, whose lease was extended", got)
	}
	if got := read(t, b, "refresh"); !sameRecords(got, []wsroom.PresenceRecord{x}) {
		t.Fatalf("read %+v, want the refreshed entry", got)
	}
}

// claimIsExactlyOnce: while entries expire wave after wave, four
// claimers, two on each process, claim at once; together they claim
// every entry, none twice.
func claimIsExactlyOnce(t *testing.T, pair PresencePair) {
	const waves, perWave = 20, 50
	a, b := pair(t)
	var (
		mu      sync.Mutex
		claimed = map[string]int{}
		wg      sync.WaitGroup
		done    = make(chan struct{})
		errs    = make(chan error, 4)
	)
	for _, br := range []wsroom.PresenceBroker{a, a, b, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				got, err := br.ClaimExpired(context.Background(), "claims")
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				for _, x := range got {
					claimed[x.ID]++
				}
				mu.Unlock()
				select {
				case <-done:
					if len(got) == 0 {
						return
					}
				default:
				}
			}
		}()
	}
	for w := range waves {
		recs := make([]wsroom.PresenceRecord, perWave)
		for i := range recs {
			recs[i] = record("dead", fmt.Sprint(w, ".", i), fmt.Sprint("k", i))
		}
		put(t, a, "claims", time.Millisecond, recs...)
	}
	wstest.WaitFor(t, "every entry to be claimed", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(claimed) == waves*perWave
	})
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("ClaimExpired: %v", err)
	}
	for id, n := range claimed {
		if n != 1 {
			t.Fatalf("entry %s claimed %d times", id, n)
		}
	}
}

// presenceRoomsApart: an entry in one room, whatever the names, is read
// and claimed in that room only.
func presenceRoomsApart(t *testing.T, pair PresencePair) {
	a, b := pair(t)
	for i, name := range hostileNames {
		put(t, a, name, time.Minute, record("a1", fmt.Sprint(i), fmt.Sprint("k", i)))
	}
	for i, name := range hostileNames {
		want := record("a1", fmt.Sprint(i), fmt.Sprint("k", i))
		if got := read(t, b, name); !sameRecords(got, []wsroom.PresenceRecord{want}) {
			t.Fatalf("room %q read %+v, want its own entry alone", name, got)
		}
	}
	put(t, a, hostileNames[0], time.Millisecond, record("a1", "0", "k0"))
	wstest.WaitFor(t, "the entry to expire", func() bool { return len(read(t, b, hostileNames[0])) == 0 })
	for _, name := range hostileNames[1:] {
		if got := claim(t, b, name); len(got) != 0 {
			t.Fatalf("room %q claimed %+v, another room's expired entry", name, got)
		}
	}
	if got := claim(t, b, hostileNames[0]); len(got) != 1 {
		t.Fatalf("room %q claimed %+v, want its expired entry", hostileNames[0], got)
	}
	for i, name := range hostileNames[1:] {
		if err := a.DropPresence(name, []string{fmt.Sprint("a1-", i+1)}); err != nil {
			t.Fatal(err)
		}
	}
}
