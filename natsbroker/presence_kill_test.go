package natsbroker_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/brokertest"
	"github.com/wsroom/wsroom/internal/wstest"
)

// Three instances, one killed, then NATS restarted (keeping its store)
// under the two others.
func TestAMemberKilledWithItsProcessIsAnnouncedGoneOnceEverywhere(t *testing.T) {
	ns := newJetStreamServer(t)
	killTest(t, ns.url(), 2*time.Second, 15*time.Second).restartNATS(t, ns)
}

// With the default lease, a killed process's members are gone from the
// survivors within 30 seconds, as the README says.
func TestWithTheDefaultLeaseAKilledProcessIsGoneWithin30Seconds(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the default lease, about 25 s: skipped under -short")
	}
	killTest(t, newJetStreamServer(t).url(), wsroom.DefaultPresenceLease, 30*time.Second)
}

// killTest runs three instances, each a process of its own with lease, and
// a member on each: presence agrees on every instance within a second;
// once one instance is killed with SIGKILL, its member is gone from the
// survivors' presence within expiry, and its "left" reaches each
// surviving member exactly once, announced by one survivor.
func killTest(t *testing.T, url string, lease, expiry time.Duration) *survivors {
	prefix := uniquePrefix()
	a, b, c := startChild(t, url, prefix, lease), startChild(t, url, prefix, lease), startChild(t, url, prefix, lease)
	ann := brokertest.DialPresence(t, a.URL, "k", "ann")
	bob := brokertest.DialPresence(t, b.URL, "k", "bob")
	brokertest.DialPresence(t, c.URL, "k", "cat")
	took := awaitWho(t, time.Second, "k", "ann:1 bob:1 cat:1", a, b, c)
	t.Logf("presence agreed on three instances %v after the last join", took)
	// Every member has the joins of those after it, and bob maybe ann's,
	// whose announcement was still on its way when bob joined.
	brokertest.ExpectOnly(t, ann, "ann", brokertest.PresenceMsg{Type: "joined", From: "bob"}, brokertest.PresenceMsg{Type: "joined", From: "cat"})
	if got := fmt.Sprint(brokertest.UntilMarker(t, bob, "bob")); got != "[{joined cat}]" && got != "[{joined ann} {joined cat}]" {
		t.Fatalf("bob received %s, want cat's joined (after ann's, maybe)", got)
	}

	// The survivors claim only once the broker has answered them for a
	// lease, counted from the end of their first round: a process that
	// started less than six rounds ago may claim a round later than one
	// that has run for longer. Kill once both are past that, as
	// long-running instances are.
	wstest.WaitWithin(t, 2*lease+wstest.Timeout, "both survivors to have run six lease rounds", func() bool {
		return a.stats(t).PresenceLeases >= 6 && b.stats(t).PresenceLeases >= 6
	})
	c.kill(t)
	killed := time.Now()
	took = awaitWho(t, expiry, "k", "ann:1 bob:1", a, b)
	t.Logf("the killed instance's member was gone from both survivors %v after the kill (lease %v)", took, lease)
	for name, cl := range map[string]*brokertest.Client{"ann": ann, "bob": bob} {
		if m := nextAnnouncement(t, cl); m != (brokertest.PresenceMsg{Type: "left", From: "cat"}) {
			t.Fatalf("%s got %+v, want cat's left", name, m)
		}
	}
	if took := time.Since(killed); took > expiry {
		t.Fatalf("cat's left arrived %v after the kill, over %v", took, expiry)
	} else {
		t.Logf("cat's left reached both survivors' members %v after the kill", took)
	}
	// Two more lease rounds on each survivor: no second claim can be in
	// flight, so nothing may follow but the markers.
	la, lb := a.stats(t).PresenceLeases, b.stats(t).PresenceLeases
	wstest.WaitWithin(t, lease+wstest.Timeout, "two more lease rounds", func() bool {
		return a.stats(t).PresenceLeases >= la+2 && b.stats(t).PresenceLeases >= lb+2
	})
	brokertest.ExpectOnly(t, ann, "ann")
	brokertest.ExpectOnly(t, bob, "bob")
	if claimed := a.stats(t).PresenceClaimed + b.stats(t).PresenceClaimed; claimed != 1 {
		t.Fatalf("the survivors claimed %d entries, want cat's alone", claimed)
	}
	return &survivors{a: a, b: b, ann: ann, bob: bob, lease: lease}
}

// survivors are the two instances a killTest left, each with its member.
type survivors struct {
	a, b     *child
	ann, bob *brokertest.Client
	lease    time.Duration
}

// restartNATS stops the NATS server for a lease and a half and starts it
// again with its store: no live member is announced gone, nothing is
// claimed, and presence converges on both survivors.
func (s *survivors) restartNATS(t *testing.T, ns *natsServer) {
	ea, eb := s.a.stats(t).PresenceErrors, s.b.stats(t).PresenceErrors
	claimed := s.a.stats(t).PresenceClaimed + s.b.stats(t).PresenceClaimed
	ns.stop()
	wstest.WaitFor(t, "both survivors to fail a refresh", func() bool {
		return s.a.stats(t).PresenceErrors > ea && s.b.stats(t).PresenceErrors > eb
	})
	down := time.Now()
	wstest.WaitWithin(t, 2*s.lease, "a lease and a half to pass", func() bool { return time.Since(down) > 3*s.lease/2 })
	ns.start()
	took := awaitWho(t, wstest.Timeout, "k", "ann:1 bob:1", s.a, s.b)
	t.Logf("presence converged on both survivors %v after NATS restarted", took)
	back := time.Now()
	la, lb := s.a.stats(t).PresenceLeases, s.b.stats(t).PresenceLeases
	wstest.WaitWithin(t, 2*s.lease+wstest.Timeout, "the survivors to claim again", func() bool {
		return time.Since(back) > 2*s.lease && s.a.stats(t).PresenceLeases >= la+2 && s.b.stats(t).PresenceLeases >= lb+2
	})
	brokertest.ExpectOnly(t, s.ann, "ann")
	brokertest.ExpectOnly(t, s.bob, "bob")
	if now := s.a.stats(t).PresenceClaimed + s.b.stats(t).PresenceClaimed; now != claimed {
		t.Fatalf("%d live entries claimed as dead after the restart", now-claimed)
	}
}

// nextAnnouncement returns c's next frame that is not a marker.
func nextAnnouncement(t testing.TB, c *brokertest.Client) brokertest.PresenceMsg {
	t.Helper()
	for {
		if m := brokertest.NextPresenceMsg(t, c); m.Type != "marker" {
			return m
		}
	}
}
