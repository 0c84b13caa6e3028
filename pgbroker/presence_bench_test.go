//go:build unix

package pgbroker_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/wstest"
)

// BenchmarkPresenceTraffic measures what presence costs PostgreSQL in the
// steady state with 10,000 members in 100 rooms, on one instance (a child
// process with the default lease) and a server of its own: the
// statements per second the instance sends (entries renewed, expired ones
// looked for; the listener's health-check pings are among them), the
// bytes per second to and from PostgreSQL, counted by a proxy between the
// two over three lease rounds once the instance claims in every round
// (six rounds after every member has joined), and what an entry takes in
// the database. The members are real WebSocket connections
// from this process. b.N is ignored: run it with -benchtime=1x.
func BenchmarkPresenceTraffic(b *testing.B) {
	const members, rooms, rounds, settle = 10000, 100, 3, 6
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < members+256 {
		b.Skipf("%d members need %d file descriptors in this process (and the instance's); ulimit -n is %d", members, members+256, lim.Cur)
	}
	srv := ownServer(b)
	proxy := newCountingProxy(b, hostPort(b, srv.URL))
	u, _ := url.Parse(srv.URL)
	u.Host = proxy.ln.Addr().String()
	prefix := uniquePrefix()
	inst := startChild(b, u.String(), prefix, wsroom.DefaultPresenceLease)
	dialMembers(b, inst.URL, members, rooms)

	// The steady state: the first rounds, slowed by the joins, are over,
	// and the instance, healthy for a lease, claims in every round.
	start := inst.stats(b).PresenceLeases + settle
	wstest.WaitWithin(b, 3*wsroom.DefaultPresenceLease, "the steady state", func() bool { return inst.stats(b).PresenceLeases >= start })
	admin := newPool(b, srv.URL)
	table := prefix + "_presence"
	size0 := relationSize(b, admin, table)
	from, t0 := proxy.counts(), time.Now()
	wstest.WaitWithin(b, 2*rounds*wsroom.DefaultPresenceLease, "three lease rounds", func() bool {
		return inst.stats(b).PresenceLeases >= start+rounds
	})
	to, secs := proxy.counts(), time.Since(t0).Seconds()

	b.ReportMetric(float64(to.statements-from.statements)/secs, "statements/s")
	b.ReportMetric(float64(to.in-from.in)/secs, "bytes-in/s")
	b.ReportMetric(float64(to.out-from.out)/secs, "bytes-out/s")
	b.ReportMetric(float64(relationSize(b, admin, table)-size0), "table-growth-bytes")
	var total, rows int64
	var row float64
	err := admin.QueryRow(context.Background(), `SELECT pg_total_relation_size($1), count(*), avg(pg_column_size(p.*))
FROM `+prefix+`_presence p`, prefix+"_presence").Scan(&total, &rows, &row)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(total)/float64(rows), "pg-bytes/entry")
	b.ReportMetric(row, "row-bytes")
	if st := inst.stats(b); st.Present != members || st.PresenceErrors != 0 || rows != members {
		b.Fatalf("%d present, %d rows, %d presence errors; want %d, %d and none", st.Present, rows, st.PresenceErrors, members, members)
	}
}

// relationSize returns the bytes of table, its index and its TOAST.
func relationSize(b *testing.B, admin *pgxpool.Pool, table string) int64 {
	b.Helper()
	var n int64
	if err := admin.QueryRow(context.Background(), "SELECT pg_total_relation_size($1)", table).Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n
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

// countingProxy forwards connections to PostgreSQL and counts the bytes
// each way and the statements the clients send: their Sync and Query
// messages (each of pgx's statements ends with one).
type countingProxy struct {
	ln                  net.Listener
	in, out, statements atomic.Int64
	mu                  sync.Mutex
	conns               []net.Conn
	wg                  sync.WaitGroup
}

// proxyCounts are a countingProxy's totals: bytes to and from the server,
// and statements.
type proxyCounts struct{ in, out, statements int64 }

func (p *countingProxy) counts() proxyCounts {
	return proxyCounts{p.in.Load(), p.out.Load(), p.statements.Load()}
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
			go p.pipe(server, client, true)
			go p.pipe(client, server, false)
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

// pipe copies src to dst until either ends; toServer says src is the
// client's, whose messages are counted.
func (p *countingProxy) pipe(dst, src net.Conn, toServer bool) {
	defer p.wg.Done()
	defer dst.Close()
	if !toServer {
		_, _ = io.Copy(countingWriter{dst, &p.out}, src)
		return
	}
	pr, pw := io.Pipe()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.countMessages(pr)
	}()
	_, _ = io.Copy(countingWriter{dst, &p.in}, io.TeeReader(src, pw))
	pw.Close()
}

// countMessages reads the frontend protocol from r, the startup message
// (a length, no type) and then typed messages, counting Sync ('S') and
// Query ('Q'); it reads r to its end.
func (p *countingProxy) countMessages(r io.Reader) {
	defer io.Copy(io.Discard, r) // what is left after the end, or a malformed message
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:4]); err != nil {
		return
	}
	if _, err := io.CopyN(io.Discard, r, int64(binary.BigEndian.Uint32(hdr[:4]))-4); err != nil {
		return
	}
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return
		}
		if hdr[0] == 'S' || hdr[0] == 'Q' {
			p.statements.Add(1)
		}
		if _, err := io.CopyN(io.Discard, r, int64(binary.BigEndian.Uint32(hdr[1:]))-4); err != nil {
			return
		}
	}
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
