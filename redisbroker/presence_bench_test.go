//go:build unix

package redisbroker_test

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/wstest"
)

// BenchmarkPresenceTraffic measures what presence costs Redis in the
// steady state with 10,000 members in 100 rooms, on one instance (a child
// process with the default lease) and a Redis server of its own: the
// scripts run per second (entries refreshed, expired ones looked for),
// the bytes per second to and from Redis, and Redis's memory per entry,
// over three lease rounds after every member has joined. The members are
// real WebSocket connections from this process. b.N is ignored: run it
// with -benchtime=1x.
func BenchmarkPresenceTraffic(b *testing.B) {
	const members, rooms, rounds = 10000, 100, 3
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < members+256 {
		b.Skipf("%d members need %d file descriptors in this process (and the instance's); ulimit -n is %d", members, members+256, lim.Cur)
	}
	srv := ownRedis(b)
	admin := newClient(b, srv.Addr)
	before := redisInfo(b, admin)
	inst := startChild(b, srv.Addr, uniquePrefix(b), wsroom.DefaultPresenceLease)
	dialMembers(b, inst.URL, members, rooms)
	joined := redisInfo(b, admin)

	start := inst.stats(b).PresenceLeases
	wstest.WaitWithin(b, 2*wsroom.DefaultPresenceLease, "a lease round", func() bool { return inst.stats(b).PresenceLeases > start })
	from, t0 := redisInfo(b, admin), time.Now()
	wstest.WaitWithin(b, 2*rounds*wsroom.DefaultPresenceLease, "three lease rounds", func() bool {
		return inst.stats(b).PresenceLeases >= start+1+rounds
	})
	to, secs := redisInfo(b, admin), time.Since(t0).Seconds()

	b.ReportMetric(float64(to["cmdstat_evalsha"]-from["cmdstat_evalsha"])/secs, "scripts/s")
	b.ReportMetric(float64(to["total_net_input_bytes"]-from["total_net_input_bytes"])/secs, "bytes-in/s")
	b.ReportMetric(float64(to["total_net_output_bytes"]-from["total_net_output_bytes"])/secs, "bytes-out/s")
	b.ReportMetric(float64(joined["used_memory"]-before["used_memory"])/members, "redis-bytes/entry")
	if st := inst.stats(b); st.Present != members || st.PresenceErrors != 0 {
		b.Fatalf("%d present, %d presence errors; want %d and none", st.Present, st.PresenceErrors, members)
	}
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

// redisInfo returns the numbers of Redis's INFO that the benchmark reads:
// used_memory, the network totals, and the calls of each command as
// cmdstat_<name>.
func redisInfo(b *testing.B, admin *redis.Client) map[string]int64 {
	b.Helper()
	text, err := admin.Info(b.Context(), "memory", "stats", "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	out := map[string]int64{}
	for _, line := range strings.Split(text, "\r\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		if strings.HasPrefix(k, "cmdstat_") {
			calls, _, _ := strings.Cut(strings.TrimPrefix(v, "calls="), ",")
			v = calls
		}
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			out[k] = n
		}
	}
	return out
}
