package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/redistest"
	"github.com/wsroom/wsroom/internal/wstest"
)

// Presence across chat instances: real chat binaries as child processes on
// one real broker, each asked over HTTP (GET presence) what it sees.

// shortLease is the presence lease of the cluster tests (-presence-lease):
// a killed instance's members are announced gone 0.75 to 1.25 of it after
// its death.
const shortLease = 2 * time.Second

// presenceBrokers are the brokers the chat joins instances through; each
// must be a wsroom.PresenceBroker for presence to span them.
var presenceBrokers = []struct {
	name string
	url  func(t *testing.T) (flag, url string)
}{
	{"redis", func(t *testing.T) (string, string) { return "-redis", "redis://" + redistest.Shared(t) }},
	{"nats", func(t *testing.T) (string, string) { return "-nats", startNATS(t).url() }},
	{"postgres", func(t *testing.T) (string, string) { return "-postgres", pgShared(t) }},
}

// startPresenceCluster starts n chat instances on the broker with args,
// and fails unless each logs that its broker is a PresenceBroker.
func startPresenceCluster(t *testing.T, n int, args ...string) []*chatProcess {
	t.Helper()
	bin := chatBinary(t)
	ps := make([]*chatProcess, n)
	for i := range ps {
		ps[i] = startBinary(t, bin, args...)
		if !strings.Contains(ps[i].stderr.String(), "presence=true") {
			t.Fatalf("the broker (%s) is not a wsroom.PresenceBroker: presence cannot span the instances", strings.Join(args, " "))
		}
	}
	return ps
}

// agree waits until every instance's GET presence of room is want, for d
// at most, and returns how long that took.
func agree(t *testing.T, ps []*chatProcess, room, want string, d time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for i, p := range ps {
		if got, ok := presenceWithin(t, p.base, room, want, d-time.Since(start)); !ok {
			t.Fatalf("instance %d's presence of %s is %q after %v, want %q", i, room, got, time.Since(start).Round(time.Millisecond), want)
		}
	}
	return time.Since(start)
}

// count returns how many frames of typ from user m has received.
func (m *watched) count(typ, user string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, f := range m.frames {
		if f.typ == typ && f.user == user {
			n++
		}
	}
	return n
}

// TestPresenceAcrossThreeInstancesAndAKilledOne: three instances, a member
// on each; every instance's GET presence lists the three within 1 s; one
// instance is killed with SIGKILL: within 30 s its member is gone from the
// survivors' presence, and its left reaches each remaining member exactly
// once. On each broker, with a short lease, and on Redis with the default
// one too.
func TestPresenceAcrossThreeInstancesAndAKilledOne(t *testing.T) {
	for _, b := range presenceBrokers {
		t.Run(b.name, func(t *testing.T) {
			flag, url := b.url(t)
			killedInstanceIsAnnouncedGone(t, shortLease, flag, url, "-presence-lease", shortLease.String())
		})
	}
	t.Run("redis/default-lease", func(t *testing.T) {
		killedInstanceIsAnnouncedGone(t, wsroom.DefaultPresenceLease, "-redis", "redis://"+redistest.Shared(t))
	})
}

func killedInstanceIsAnnouncedGone(t *testing.T, lease time.Duration, args ...string) {
	ps := startPresenceCluster(t, 3, args...)
	room := fmt.Sprintf("presence-%d", time.Now().UnixNano())
	a, b, c := watch(t, ps[0].base, room, "a"), watch(t, ps[1].base, room, "b"), watch(t, ps[2].base, room, "c")
	for _, m := range []*watched{a, b, c} {
		m.joinedWithin(t, wsroom.BrokerReadyTimeout)
	}
	took := agree(t, ps, room, "a:1 b:1 c:1", time.Second)

	killed := time.Now()
	if err := ps[2].cmd.Process.Kill(); err != nil { // SIGKILL: no goodbye
		t.Fatal(err)
	}
	<-ps[2].done
	gone := agree(t, ps[:2], room, "a:1 b:1", 30*time.Second)
	wstest.WaitWithin(t, 30*time.Second-time.Since(killed), "c's left to reach a and b", func() bool {
		return a.count("left", "c") > 0 && b.count("left", "c") > 0
	})
	announced := time.Since(killed)
	// Exactly once: no second left while the other survivor sweeps once
	// more (each sweeps every quarter lease). A window, for a thing that
	// must not happen.
	time.Sleep(lease/4 + lease/8)
	if na, nb := a.count("left", "c"), b.count("left", "c"); na != 1 || nb != 1 {
		t.Fatalf("c's left reached a %d and b %d times, want once each", na, nb)
	}
	if na, nb := a.count("left", "a")+a.count("left", "b"), b.count("left", "a")+b.count("left", "b"); na+nb != 0 {
		t.Fatalf("a live member was announced gone: a got %d such lefts, b %d", na, nb)
	}
	connectedThroughout(t, a, b)
	t.Logf("%s, lease %v: three instances agree %v after the joins; after SIGKILL, gone from the survivors' presence in %v, left announced (once each) in %v",
		args[0], lease, took.Round(time.Millisecond), gone.Round(time.Millisecond), announced.Round(time.Millisecond))
}

// TestRedisRestartUnderTheSurvivorsAnnouncesNoLiveMemberGone: Redis is
// stopped for two leases and started again, empty (it keeps nothing on
// disk here): the instances keep their own members, put them back, and
// every instance's presence converges to all of them; nobody is told a
// live member left.
func TestRedisRestartUnderTheSurvivorsAnnouncesNoLiveMemberGone(t *testing.T) {
	srv := redistest.Own(t)
	ps := startPresenceCluster(t, 3, "-redis", "redis://"+srv.Addr, "-presence-lease", shortLease.String())
	room := fmt.Sprintf("presence-restart-%d", time.Now().UnixNano())
	ms := []*watched{watch(t, ps[0].base, room, "a"), watch(t, ps[1].base, room, "b"), watch(t, ps[2].base, room, "c")}
	for _, m := range ms {
		m.joinedWithin(t, wsroom.BrokerReadyTimeout)
	}
	agree(t, ps, room, "a:1 b:1 c:1", time.Second)

	srv.Stop()
	// While Redis is down each instance answers with its own member,
	// partial. The outage lasts two leases: long enough for every entry to
	// have expired, had Redis kept them.
	wstest.WaitFor(t, "instance 0 to answer partial", func() bool {
		_, users, partial := getPresence(t, ps[0].base, room, "")
		return partial && users == "a:1"
	})
	time.Sleep(2 * shortLease) // the outage itself, not synchronisation
	srv.Restart(t)
	took := agree(t, ps, room, "a:1 b:1 c:1", 3*shortLease)
	time.Sleep(shortLease) // a whole lease of sweeps after the restart, in which nobody may be announced gone
	for _, m := range ms {
		for _, u := range []string{"a", "b", "c"} {
			if n := m.count("left", u); n != 0 {
				t.Fatalf("%s was told %d times that live %s left", m.name, n, u)
			}
		}
	}
	connectedThroughout(t, ms...)
	t.Logf("redis down %v: presence agrees again %v after the restart; no live member announced gone", 2*shortLease, took.Round(time.Millisecond))
}
