//go:build unix

package redisbroker_test

import (
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
// scripts Redis runs per second (entries renewed, expired ones looked for)
// and the bytes per second between the instance and Redis, counted by a
// proxy between the two (the health check's PINGs are among them), over
// four lease rounds once the instance claims in every round (six rounds
// after every member has joined); and what an entry takes in Redis: its
// keys' MEMORY USAGE, and the growth of used_memory over the joins. The
// members are real WebSocket connections from this process. b.N is
// ignored: run it with -benchtime=1x.
func BenchmarkPresenceTraffic(b *testing.B) {
	const members, rooms, rounds, settle = 10000, 100, 4, 6
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < members+256 {
		b.Skipf("%d members need %d file descriptors in this process (and the instance's); ulimit -n is %d", members, members+256, lim.Cur)
	}
	srv := ownRedis(b)
	admin := newClient(b, srv.Addr)
	proxy := newCountingProxy(b, srv.Addr)
	before := redisInfo(b, admin)
	prefix := uniquePrefix(b)
	inst := startChild(b, proxy.ln.Addr().String(), prefix, wsroom.DefaultPresenceLease)
	dialMembers(b, inst.URL, members, rooms)
	joined := redisInfo(b, admin)

	// The steady state: the first rounds, slowed by the joins and then
	// run back to back, are over, and the instance, healthy for a lease,
	// claims in every round. Each round ends with its count, so the window
	// opens and closes between rounds.
	start := inst.stats(b).PresenceLeases + settle
	wstest.WaitWithin(b, 3*wsroom.DefaultPresenceLease, "the steady state", func() bool { return inst.stats(b).PresenceLeases >= start })
	from, in0, out0, t0 := redisInfo(b, admin), proxy.in.Load(), proxy.out.Load(), time.Now()
	wstest.WaitWithin(b, 2*rounds*wsroom.DefaultPresenceLease/4+wstest.Timeout, "four lease rounds", func() bool {
		return inst.stats(b).PresenceLeases >= start+rounds
	})
	to, in1, out1, secs := redisInfo(b, admin), proxy.in.Load(), proxy.out.Load(), time.Since(t0).Seconds()

	scripts := to["cmdstat_evalsha"] - from["cmdstat_evalsha"]
	if scripts != 2*rooms*rounds {
		b.Fatalf("Redis ran %d scripts in %d rounds, want %d: a renewal and a claim per room in each", scripts, rounds, 2*rooms*rounds)
	}
	b.ReportMetric(secs/rounds, "s/round")
	b.ReportMetric(float64(scripts)/secs, "scripts/s")
	b.ReportMetric(float64(in1-in0)/secs, "bytes-in/s")
	b.ReportMetric(float64(out1-out0)/secs, "bytes-out/s")
	b.ReportMetric(float64(in1-in0)/rounds/members, "bytes-in/entry/round")
	keyBytes, entries := presenceMemory(b, admin, prefix)
	b.ReportMetric(float64(keyBytes)/float64(entries), "key-bytes/entry")
	b.ReportMetric(float64(joined["used_memory"]-before["used_memory"])/members, "used-memory-bytes/entry")
	if st := inst.stats(b); st.Present != members || st.PresenceErrors != 0 || st.PresenceClaimed != 0 || entries != members {
		b.Fatalf("%d present, %d entries in Redis, %d presence errors, %d claimed; want %d, %d, none and none",
			st.Present, entries, st.PresenceErrors, st.PresenceClaimed, members, members)
	}
}

// presenceMemory returns the bytes Redis's MEMORY USAGE gives for the
// presence keys under prefix (every element sampled), and the entries
// their hashes hold.
func presenceMemory(b *testing.B, admin *redis.Client, prefix string) (bytes, entries int64) {
	b.Helper()
	ctx := b.Context()
	iter := admin.Scan(ctx, 0, prefix+":*", 1000).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		n, err := admin.MemoryUsage(ctx, key, 0).Result()
		if err != nil {
			b.Fatal(err)
		}
		bytes += n
		if strings.Contains(key, "}p:") {
			entries += admin.HLen(ctx, key).Val()
		}
	}
	if err := iter.Err(); err != nil {
		b.Fatal(err)
	}
	return bytes, entries
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

// countingProxy forwards connections to Redis and counts the bytes each
// way: in to Redis, out from it.
type countingProxy struct {
	ln      net.Listener
	in, out atomic.Int64
	mu      sync.Mutex
	conns   []net.Conn
	wg      sync.WaitGroup
}

// newCountingProxy listens on a free loopback port and forwards to target
// until tb's cleanup.
func newCountingProxy(tb testing.TB, target string) *countingProxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &countingProxy{ln: ln}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", target)
			if err != nil {
				client.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, client, server)
			p.mu.Unlock()
			p.wg.Add(2)
			go p.pipe(server, client, &p.in)
			go p.pipe(client, server, &p.out)
		}
	}()
	tb.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

// pipe copies src to dst, adding the bytes to n, until either ends.
func (p *countingProxy) pipe(dst, src net.Conn, n *atomic.Int64) {
	defer p.wg.Done()
	defer dst.Close()
	_, _ = io.Copy(countingWriter{dst, n}, src)
}

// countingWriter adds what it writes to n.
type countingWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n.Add(int64(n))
	return n, err
}
