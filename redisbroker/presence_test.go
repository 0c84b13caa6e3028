package redisbroker_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/brokertest"
	"github.com/wsroom/wsroom/internal/redistest"
	"github.com/wsroom/wsroom/internal/wstest"
	"github.com/wsroom/wsroom/redisbroker"
)

// presencePair returns brokertest's PresencePair: two processes on the
// server at addr, with a prefix of their own.
func presencePair(addr string, opts ...func(*redis.Options)) brokertest.PresencePair {
	return func(t *testing.T) (a, b wsroom.PresenceBroker) {
		p := redisbroker.WithPrefix(uniquePrefix(t))
		return newBroker(t, addr, opts, p), newBroker(t, addr, opts, p)
	}
}

func TestPresenceContract(t *testing.T) {
	for _, proto := range protocols {
		t.Run(proto.name, func(t *testing.T) {
			brokertest.RunPresence(t, presencePair(redisAddr(t), proto.opts...))
		})
	}
}

// A Redis restart (this one keeps nothing on disk) announces no live
// member gone, and presence converges once Redis is back.
func TestPresenceAcrossARedisRestart(t *testing.T) {
	wstest.CheckGoroutines(t)
	srv := ownRedis(t)
	brokertest.PresenceOutage(t, presencePair(srv.Addr), srv.Stop, func() { srv.Restart(t) })
}

// The same when Redis saves its data on the way down and loads it back:
// the entries come back expired, and still nobody claims them, since every
// instance renews its own first.
func TestPresenceAcrossARedisRestartThatKeepsItsData(t *testing.T) {
	wstest.CheckGoroutines(t)
	srv := ownRedis(t)
	admin := newClient(t, srv.Addr)
	stop := func() {
		_ = admin.ShutdownSave(t.Context()).Err() // the connection ends with the server: no reply
		srv.Stop()                                // reaps the process
	}
	brokertest.PresenceOutage(t, presencePair(srv.Addr), stop, func() {
		srv.Restart(t)
		if n, err := admin.DBSize(t.Context()).Result(); err != nil || n == 0 {
			t.Fatalf("Redis came back with %d keys (%v): it did not keep its data", n, err)
		}
	})
}

// Three instances, one killed, then Redis restarted under the two others.
func TestAMemberKilledWithItsProcessIsAnnouncedGoneOnceEverywhere(t *testing.T) {
	t.Parallel()
	srv := ownRedis(t)
	killTest(t, srv.Addr, 2*time.Second, 15*time.Second).restartRedis(t, srv)
}

// With the default lease, a killed process's members are gone from the
// survivors within 30 seconds, as the README says.
func TestWithTheDefaultLeaseAKilledProcessIsGoneWithin30Seconds(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the default lease, about 25 s: skipped under -short")
	}
	t.Parallel()
	killTest(t, redisAddr(t), wsroom.DefaultPresenceLease, 30*time.Second)
}

// killTest runs three instances, each a process of its own with lease, and
// a member on each: presence agrees on every instance within a second;
// once one instance is killed with SIGKILL, its member is gone from the
// survivors' presence within expiry, and its "left" reaches each
// surviving member exactly once, announced by one survivor.
func killTest(t *testing.T, addr string, lease, expiry time.Duration) *survivors {
	prefix := uniquePrefix(t)
	a, b, c := startChild(t, addr, prefix, lease), startChild(t, addr, prefix, lease), startChild(t, addr, prefix, lease)
	ann := brokertest.DialPresence(t, a.URL, "k", "ann")
	bob := brokertest.DialPresence(t, b.URL, "k", "bob")
	brokertest.DialPresence(t, c.URL, "k", "cat")
	took := awaitWho(t, time.Second, "k", "ann:1 bob:1 cat:1", a, b, c)
	t.Logf("presence agreed on three instances %v after the last join", took)
	expectJoins(t, ann, bob)

	c.kill(t)
	killed := time.Now()
	took = awaitWho(t, expiry, "k", "ann:1 bob:1", a, b)
	t.Logf("the killed instance's member was gone from both survivors %v after the kill (lease %v)", took, lease)
	for name, cl := range map[string]*brokertest.Client{"ann": ann, "bob": bob} {
		if m := nextAnnouncement(t, cl); m != (brokertest.PresenceMsg{Type: "left", From: "cat"}) {
			t.Fatalf("%s got %+v, want cat's left", name, m)
		}
	}
	if time.Since(killed) > expiry {
		t.Fatalf("cat's left arrived %v after the kill, over %v", time.Since(killed), expiry)
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

// expectJoins checks the joins ann and bob received once all three had
// joined: ann has bob's and cat's, bob has cat's and maybe ann's, whose
// announcement was still on its way when bob joined. They are read, not
// raced against a marker: an instance delivers a message locally before
// it sends it to Redis, so another instance's announcement may come after
// a local marker, and ann's may even reach bob after cat's. ann's marker
// is bob's barrier: ann's instance published her joined before it, and
// one publisher's messages keep their order.
func expectJoins(t *testing.T, ann, bob *brokertest.Client) {
	t.Helper()
	first := fmt.Sprint(brokertest.NextPresenceMsg(t, ann)) + fmt.Sprint(brokertest.NextPresenceMsg(t, ann))
	if first != "{joined bob}{joined cat}" && first != "{joined cat}{joined bob}" {
		t.Fatalf("ann received %s, want bob's and cat's joined", first)
	}
	brokertest.ExpectOnly(t, ann, "ann")
	for barrier, cat, annJoined := false, false, false; !barrier || !cat; {
		switch m := brokertest.NextPresenceMsg(t, bob); {
		case m == brokertest.PresenceMsg{Type: "marker", From: "ann"} && !barrier:
			barrier = true
		case m == brokertest.PresenceMsg{Type: "joined", From: "cat"} && !cat:
			cat = true
		case m == brokertest.PresenceMsg{Type: "joined", From: "ann"} && !barrier && !annJoined:
			annJoined = true
		default:
			t.Fatalf("bob received %+v, want cat's joined and ann's marker (after ann's joined, maybe)", m)
		}
	}
	brokertest.ExpectOnly(t, bob, "bob")
}

// survivors are the two instances a killTest left, each with its member.
type survivors struct {
	a, b     *child
	ann, bob *brokertest.Client
	lease    time.Duration
}

// restartRedis stops Redis (which keeps nothing) for a lease and a half
// and starts it again: no live member is announced gone, nothing is
// claimed, and presence converges on both survivors.
func (s *survivors) restartRedis(t *testing.T, srv *redistest.Server) {
	ea, eb := s.a.stats(t).PresenceErrors, s.b.stats(t).PresenceErrors
	claimed := s.a.stats(t).PresenceClaimed + s.b.stats(t).PresenceClaimed
	srv.Stop()
	wstest.WaitFor(t, "both survivors to fail a refresh", func() bool {
		return s.a.stats(t).PresenceErrors > ea && s.b.stats(t).PresenceErrors > eb
	})
	down := time.Now()
	wstest.WaitWithin(t, 2*s.lease, "a lease and a half to pass", func() bool { return time.Since(down) > 3*s.lease/2 })
	srv.Restart(t)
	took := awaitWho(t, wstest.Timeout, "k", "ann:1 bob:1", s.a, s.b)
	t.Logf("presence converged on both survivors %v after Redis restarted", took)
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
