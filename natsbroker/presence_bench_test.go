//go:build unix

package natsbroker_test

import (
	"fmt"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/wstest"
)

// BenchmarkPresenceTraffic measures what presence costs NATS in the
// steady state with 10,000 members in 100 rooms, on one instance (a child
// process with the default lease) and a JetStream server of its own in
// this process: the messages per second the server receives and sends
// (entries put again, expired ones looked for, their acknowledgements),
// the bytes per second both ways, over three lease rounds after every
// member has joined, and the presence stream's bytes per entry. The
// members are real WebSocket connections from this process. b.N is
// ignored: run it with -benchtime=1x.
func BenchmarkPresenceTraffic(b *testing.B) {
	const members, rooms, rounds = 10000, 100, 3
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < members+256 {
		b.Skipf("%d members need %d file descriptors in this process (and the instance's); ulimit -n is %d", members, members+256, lim.Cur)
	}
	ns := newJetStreamServer(b)
	prefix := uniquePrefix()
	inst := startChild(b, ns.url(), prefix, wsroom.DefaultPresenceLease)
	dialMembers(b, inst.URL, members, rooms)

	start := inst.stats(b).PresenceLeases
	wstest.WaitWithin(b, 2*wsroom.DefaultPresenceLease, "a lease round", func() bool { return inst.stats(b).PresenceLeases > start })
	from, t0 := varz(b, ns), time.Now()
	wstest.WaitWithin(b, 2*rounds*wsroom.DefaultPresenceLease, "three lease rounds", func() bool {
		return inst.stats(b).PresenceLeases >= start+1+rounds
	})
	to, secs := varz(b, ns), time.Since(t0).Seconds()

	b.ReportMetric(float64(to.InMsgs-from.InMsgs)/secs, "msgs-in/s")
	b.ReportMetric(float64(to.OutMsgs-from.OutMsgs)/secs, "msgs-out/s")
	b.ReportMetric(float64(to.InBytes-from.InBytes)/secs, "bytes-in/s")
	b.ReportMetric(float64(to.OutBytes-from.OutBytes)/secs, "bytes-out/s")
	js, err := jetstream.New(connect(b, ns.url()))
	if err != nil {
		b.Fatal(err)
	}
	s, err := js.Stream(b.Context(), prefix+"_presence")
	if err != nil {
		b.Fatal(err)
	}
	state := s.CachedInfo().State
	b.ReportMetric(float64(state.Bytes)/float64(state.Msgs), "stream-bytes/entry")
	if st := inst.stats(b); st.Present != members || st.PresenceErrors != 0 || state.Msgs != members {
		b.Fatalf("%d present, %d presence errors, %d entries in the stream; want %d, none, %d", st.Present, st.PresenceErrors, state.Msgs, members, members)
	}
}

// varz returns the server's counters.
func varz(b *testing.B, ns *natsServer) *server.Varz {
	b.Helper()
	v, err := ns.srv.Varz(nil)
	if err != nil {
		b.Fatal(err)
	}
	return v
}

// dialMembers connects n members, user u<i> to room r<i mod rooms>, each
// waiting for its own "joined"; they are closed at cleanup.
func dialMembers(b *testing.B, base string, n, rooms int) {
	b.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	clients := make([]*wstest.Client, n)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				q := url.Values{"name": {fmt.Sprint("u", i)}}.Encode()
				c, _, err := wstest.TryDial(fmt.Sprintf("%s/r%d?%s", base, i%rooms, q), wstest.Options{Buffer: 2 * n / rooms})
				if err != nil {
					errs <- err
					return
				}
				clients[i] = c
				if ev, ok := c.NextWithin(wstest.Timeout); !ok || !strings.Contains(string(ev.Data), `"joined"`) {
					errs <- fmt.Errorf("member %d's first frame: %q", i, ev.Data)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.Cleanup(func() {
		for _, c := range clients {
			if c != nil {
				c.Close()
			}
		}
	})
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}
