package wsroom_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"iter"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/wstest"
)

// longLoad runs the load tests at full scale:
//
//	go test -run 'TestLoad' -wsroom.long -count=1 -timeout 30m -v .
//
// (without -race: the race detector allows 8128 live goroutines, and every
// connection held in-process costs two, its handler's and its client's).
var longLoad = flag.Bool("wsroom.long", false, "run the load tests at full scale (thousands of connections; minutes)")

// loadScale is the size of a load run.
type loadScale struct {
	conns, rooms   int           // connections held at once, spread over rooms
	published      int           // messages the server publishes to each room
	pubEvery       time.Duration // one every pubEvery
	senders, sends int           // clients per room that send, messages each
	sendEvery      time.Duration // one every sendEvery
	churn, workers int           // connections opened and closed one after another, how many at a time
}

func currentLoadScale() loadScale {
	if *longLoad {
		// 20 s of publishing: 50 messages a second from the server and 25
		// from members, to each of 5 rooms of 1000: 375,000 deliveries a
		// second, a pace two cores sustain with the clients in-process.
		return loadScale{conns: 5000, rooms: 5, published: 1000, pubEvery: 20 * time.Millisecond,
			senders: 10, sends: 50, sendEvery: 400 * time.Millisecond, churn: 50000, workers: 200}
	}
	return loadScale{conns: 600, rooms: 4, published: 100, pubEvery: 5 * time.Millisecond,
		senders: 10, sends: 10, sendEvery: 10 * time.Millisecond, churn: 3000, workers: 64}
}

// loadServer is an endpoint like a chat: each connection joins the room of
// its path (announced as "joined"), every message it sends is published to
// the room numbered per sender, and its leaving is announced ("left").
type loadServer struct {
	ep    *wsroom.Endpoint[chatIn, chatOut]
	rooms *wsroom.Rooms[chatOut]
	srv   *http.Server
	ln    net.Listener
	port  string
	logs  *logWatch
	done  chan struct{}
}

func startLoadServer(t *testing.T) *loadServer {
	t.Helper()
	ls := &loadServer{rooms: wsroom.NewRooms[chatOut](), logs: new(logWatch), done: make(chan struct{})}
	ls.ep = wsroom.New(func(c *wsroom.Conn[chatOut], msgs iter.Seq2[chatIn, error]) error {
		room := ls.rooms.Room(c.Request().PathValue("room"))
		leave, err := room.Join(c, chatOut{Type: "joined", From: c.ID()})
		if err != nil {
			return err
		}
		defer func() {
			leave()
			_ = room.Publish(chatOut{Type: "left", From: c.ID()})
		}()
		seq := 0
		for msg, err := range msgs {
			if err != nil {
				return err
			}
			seq++
			if err := room.Publish(chatOut{Type: "msg", From: c.ID(), Seq: seq, Content: msg.Content}); err != nil {
				return err
			}
		}
		return nil
	}, wsroom.WithLogger(slog.New(ls.logs)))
	mux := http.NewServeMux()
	mux.Handle("GET /ws/{room}", ls.ep)
	// Listen on every address, so that clients can spread over 127.0.0.x
	// and churn does not run out of loopback port pairs.
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	ls.ln = ln
	_, ls.port, _ = net.SplitHostPort(ln.Addr().String())
	ls.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(ls.done)
		_ = ls.srv.Serve(ln)
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wstest.Timeout)
		defer cancel()
		if err := ls.ep.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		_ = ls.srv.Shutdown(ctx)
		<-ls.done
		if n := ls.logs.panics.Load(); n > 0 {
			t.Errorf("%d handler panics: %s", n, ls.logs.text())
		}
	})
	return ls
}

// url returns the URL of room for the i-th client, spread over 16
// loopback addresses.
func (ls *loadServer) url(i int, room string) string {
	return fmt.Sprintf("http://127.0.0.%d:%s/ws/%s", 1+i%16, ls.port, room)
}

// loadClient is a raw client with a reader goroutine that answers pings,
// counts the room's "msg" messages and checks that each sender's arrive in
// order with none missing.
type loadClient struct {
	r        *wstest.Raw
	wmu      sync.Mutex
	msgs     atomic.Int64  // "msg" messages, checked in order per sender
	joins    atomic.Int64  // "joined" announcements of others
	lefts    atomic.Int64  // "left" announcements
	joinedMe chan struct{} // closed when the client's own "joined" arrived
	ownBack  chan struct{} // closed when the client's first own message came back
	id       uint64        // learnt from its own "joined": the first message it gets
	done     chan struct{}
	err      error // set before done closes
	closed   uint16
}

func dialLoad(url string) (*loadClient, error) {
	r, _, err := wstest.RawDial(url, nil)
	if err != nil {
		return nil, err
	}
	c := &loadClient{r: r, joinedMe: make(chan struct{}), ownBack: make(chan struct{}), done: make(chan struct{})}
	go c.read()
	return c, nil
}

func (c *loadClient) write(p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.r.Write(p)
}

func (c *loadClient) read() {
	defer close(c.done)
	last := map[uint64]int{}
	first := true
	for {
		f, err := c.r.ReadFrame(1 << 20)
		if err != nil {
			if c.closed == 0 {
				c.err = err
			}
			return
		}
		switch f.Opcode {
		case 0x9:
			if err := c.write(wstest.Frame(true, 0xA, f.Payload)); err != nil {
				c.err = err
				return
			}
		case 0x8:
			c.closed, _ = f.CloseCode()
		case 0x1:
			var m chatOut
			if err := json.Unmarshal(f.Payload, &m); err != nil {
				c.err = err
				return
			}
			if first {
				// Join's guarantee: the client's own announcement is the
				// first message it gets.
				first = false
				if m.Type != "joined" {
					c.err = fmt.Errorf("first message %s, want the client's own joined", f.Payload)
					return
				}
				c.id = m.From
				close(c.joinedMe)
				continue
			}
			switch m.Type {
			case "joined":
				c.joins.Add(1)
				continue
			case "left":
				c.lefts.Add(1)
				continue
			case "msg":
			default:
				continue
			}
			if m.Seq != last[m.From]+1 {
				c.err = fmt.Errorf("from %d: message %d after %d", m.From, m.Seq, last[m.From])
				return
			}
			last[m.From] = m.Seq
			c.msgs.Add(1)
			if m.From == c.id && m.Seq == 1 {
				close(c.ownBack)
			}
		}
	}
}

// await waits for ch, or the connection's end, or wstest.Timeout.
func (c *loadClient) await(ch chan struct{}) error {
	select {
	case <-ch:
		return nil
	case <-c.done:
		return fmt.Errorf("connection ended: %v (close %d)", c.err, c.closed)
	case <-time.After(wstest.Timeout):
		return errors.New("timed out")
	}
}

// send sends a chat message.
func (c *loadClient) send(content string) error {
	return c.write(wstest.Frame(true, 1, []byte(`{"type":"message","content":"`+content+`"}`)))
}

// close closes politely and waits for the reader.
func (c *loadClient) close() error {
	err := c.write(wstest.Frame(true, 8, closePayload(1000, "")))
	select {
	case <-c.done:
	case <-time.After(wstest.Timeout):
		err = errors.New("no end after the close frame")
	}
	c.r.Close()
	if c.err != nil && !isConnReset(c.err) {
		return c.err
	}
	return err
}

func isConnReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || strings.Contains(err.Error(), "connection reset")
}

// parallel runs f(i) for i in [0, n) on workers goroutines and returns the
// first error.
func parallel(n, workers int, f func(i int) error) error {
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					once.Do(func() { first = fmt.Errorf("%d: %w", i, err) })
					next.Store(int64(n)) // stop handing out work
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// checkFDs skips a long run the file limit cannot hold.
func checkFDs(t *testing.T, conns int) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < uint64(2*conns+256) {
		t.Skipf("%d connections need %d file descriptors in-process; ulimit -n is %d", conns, 2*conns+256, lim.Cur)
	}
}

// TestLoadRoomsDeliverEverything holds thousands of connections in a few
// rooms while the server publishes to each room at a steady pace and some
// members send messages, which the room relays: every member must receive
// every message, in order per sender, none twice or missing; afterwards
// every connection, goroutine and room is gone and the heap is back where
// it started.
func TestLoadRoomsDeliverEverything(t *testing.T) {
	skipIfShort(t, "load")
	sc := currentLoadScale()
	checkFDs(t, sc.conns)
	wstest.CheckGoroutines(t)
	ls := startLoadServer(t)
	warm(t, ls)
	reserve := 4*sc.conns + 500
	base := heapBaseline(reserve)
	gp := watchGoroutines()
	start := time.Now()

	clients := make([]*loadClient, sc.conns)
	roomOf := func(i int) string { return fmt.Sprint("room-", i%sc.rooms) }
	if err := parallel(sc.conns, sc.workers, func(i int) error {
		c, err := dialLoad(ls.url(i, roomOf(i)))
		if err != nil {
			return err
		}
		clients[i] = c
		select {
		case <-c.joinedMe:
			return nil
		case <-c.done:
			return fmt.Errorf("ended before joining: %v", c.err)
		case <-time.After(wstest.Timeout):
			return errors.New("no joined announcement")
		}
	}); err != nil {
		t.Fatalf("connecting: %v", err)
	}
	t.Cleanup(func() {
		for _, c := range clients {
			if c != nil {
				c.r.Close()
			}
		}
	})
	connected := time.Since(start)
	if n := ls.ep.Stats().Connections; n != int64(sc.conns) {
		t.Fatalf("%d connections open, want %d", n, sc.conns)
	}

	// Steady publishing: the server to every room, senders in every room.
	pubStart := time.Now()
	var wg sync.WaitGroup
	for r := range sc.rooms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			room := ls.rooms.Room(fmt.Sprint("room-", r))
			tk := time.NewTicker(sc.pubEvery)
			defer tk.Stop()
			for n := 1; n <= sc.published; n++ {
				<-tk.C
				_ = room.Publish(chatOut{Type: "msg", Seq: n})
			}
		}()
	}
	var sendErr atomic.Value
	for i := range sc.senders * sc.rooms {
		c := clients[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			tk := time.NewTicker(sc.sendEvery)
			defer tk.Stop()
			for k := range sc.sends {
				<-tk.C
				if err := c.send(fmt.Sprint("m", k)); err != nil {
					sendErr.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := sendErr.Load().(error); err != nil {
		t.Fatalf("sending: %v", err)
	}
	perRoom := int64(sc.published + sc.senders*sc.sends)
	expected := perRoom * int64(sc.conns)
	received := func() (n int64) {
		for _, c := range clients {
			n += c.msgs.Load()
		}
		return n
	}
	deadline := time.Now().Add(time.Minute)
	for received() < expected && time.Now().Before(deadline) {
		for _, c := range clients {
			select {
			case <-c.done:
				t.Fatalf("a client's connection ended: %v (close %d)", c.err, c.closed)
			default:
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	delivered := time.Since(pubStart)
	got := received()
	if got != expected {
		t.Fatalf("%d deliveries, want %d (%d messages in each of %d rooms of %d)", got, expected, perRoom, sc.rooms, sc.conns/sc.rooms)
	}
	s := ls.ep.Stats()
	if s.SlowConsumerCloses != 0 || s.RateLimited != 0 || s.Dropped != 0 {
		t.Fatalf("stats %+v: a connection was closed or lost messages", s)
	}

	// Everyone leaves.
	if err := parallel(sc.conns, sc.workers, func(i int) error { return clients[i].close() }); err != nil {
		t.Fatalf("closing: %v", err)
	}
	wstest.WaitFor(t, "every connection gone", func() bool { return ls.ep.Stats().Connections == 0 })
	wstest.WaitFor(t, "every room gone", func() bool { return ls.rooms.Len() == 0 })
	clients = nil
	peak := gp.end()
	if peak > int64(reserve) {
		t.Fatalf("%d goroutines at the peak, more than the %d reserved for the heap's baseline", peak, reserve)
	}
	after := heapSettles(t, base, 512<<10)
	t.Logf("load: %d connections in %d rooms (connected in %v, %d goroutines at the peak); %d deliveries expected, %d received in %v (%.0f/s); 0 slow consumers; heap %d KiB before, %d KiB after; 0 rooms left",
		sc.conns, sc.rooms, connected.Round(time.Millisecond), peak, expected, got, delivered.Round(time.Millisecond),
		float64(got)/delivered.Seconds(), base>>10, after>>10)
}

// TestLoadChurn opens and closes tens of thousands of connections (in the
// long run; thousands in CI), a bounded number at a time, spread over a
// few rooms each watched by a witness. Each connection joins (and gets its
// own announcement first), sends a message and sees it come back, then
// leaves: three in four close politely, one in four vanishes with a reset.
// The witnesses must receive exactly every joined, message and left
// announcement of their room; afterwards nothing is left: no connection,
// goroutine or room, and the heap is back where it started.
func TestLoadChurn(t *testing.T) {
	skipIfShort(t, "load")
	sc := currentLoadScale()
	checkFDs(t, sc.workers+sc.rooms)
	wstest.CheckGoroutines(t)
	ls := startLoadServer(t)
	warm(t, ls)
	reserve := 4*(sc.workers+sc.rooms) + 500
	base := heapBaseline(reserve)
	gp := watchGoroutines()

	witnesses := make([]*loadClient, sc.rooms)
	for r := range witnesses {
		c, err := dialLoad(ls.url(r, fmt.Sprint("churn-", r)))
		if err != nil {
			t.Fatal(err)
		}
		<-c.joinedMe
		witnesses[r] = c
	}
	start := time.Now()
	var vanished atomic.Int64
	if err := parallel(sc.churn, sc.workers, func(i int) error {
		c, err := dialLoad(ls.url(i, fmt.Sprint("churn-", i%sc.rooms)))
		if err != nil {
			return err
		}
		defer c.r.Close()
		if err := c.await(c.joinedMe); err != nil {
			return fmt.Errorf("joining: %w", err)
		}
		if err := c.send("hello"); err != nil {
			return err
		}
		if err := c.await(c.ownBack); err != nil {
			return fmt.Errorf("own message: %w", err)
		}
		if i%4 == 3 {
			vanished.Add(1)
			_ = c.r.Vanish()
			<-c.done
			return nil
		}
		return c.close()
	}); err != nil {
		t.Fatalf("churn: %v", err)
	}
	took := time.Since(start)
	wstest.WaitFor(t, "only the witnesses left", func() bool { return ls.ep.Stats().Connections == int64(sc.rooms) })

	// Each witness got every churner's joined, message (in order) and
	// left, and its room holds it alone.
	perRoom := int64(sc.churn / sc.rooms)
	for r, w := range witnesses {
		want := perRoom
		if r < sc.churn%sc.rooms {
			want++
		}
		wstest.WaitFor(t, "the witness's count", func() bool {
			return w.msgs.Load() >= want && w.joins.Load() >= want && w.lefts.Load() >= want
		})
		if m, j, l := w.msgs.Load(), w.joins.Load(), w.lefts.Load(); m != want || j != want || l != want {
			t.Fatalf("witness of room %d: %d joined, %d messages, %d left; want %d of each", r, j, m, l, want)
		}
		if n := ls.rooms.Room(fmt.Sprint("churn-", r)).Len(); n != 1 {
			t.Fatalf("room %d has %d members after the churn, want its witness alone", r, n)
		}
		select {
		case <-w.done:
			t.Fatalf("witness of room %d ended: %v", r, w.err)
		default:
		}
	}
	for _, w := range witnesses {
		if err := w.close(); err != nil {
			t.Fatal(err)
		}
	}
	wstest.WaitFor(t, "every connection gone", func() bool { return ls.ep.Stats().Connections == 0 })
	wstest.WaitFor(t, "every room gone", func() bool { return ls.rooms.Len() == 0 })
	s := ls.ep.Stats()
	if want := int64(sc.churn + sc.rooms + 1); s.Accepted != want { // and the warm-up
		t.Fatalf("%d upgrades accepted, want %d", s.Accepted, want)
	}
	peak := gp.end()
	if peak > int64(reserve) {
		t.Fatalf("%d goroutines at the peak, more than the %d reserved for the heap's baseline", peak, reserve)
	}
	after := heapSettles(t, base, 512<<10)
	var got int64
	for _, w := range witnesses {
		got += w.msgs.Load() + w.joins.Load() + w.lefts.Load()
	}
	t.Logf("churn: %d connections opened and closed (%d at a time, %d vanished without a close frame) in %v (%.0f/s); witnesses: %d announcements and messages expected, %d received; 0 connections, 0 rooms left, 0 goroutines leaked; heap %d KiB before, %d KiB after",
		sc.churn, sc.workers, vanished.Load(), took.Round(time.Millisecond), float64(sc.churn)/took.Seconds(),
		3*int64(sc.churn), got, base>>10, after>>10)
}

// spawnGoroutines starts n goroutines and lets them end. The runtime never
// frees a goroutine's descriptor (a few hundred bytes of heap): it keeps
// them for reuse. A run that peaks at n goroutines therefore leaves the
// heap larger by their descriptors, which is not a leak of the library;
// spawning them before the baseline is taken puts them in the baseline.
func spawnGoroutines(n int) {
	var started, release sync.WaitGroup
	release.Add(1)
	var ended sync.WaitGroup
	for range n {
		started.Add(1)
		ended.Add(1)
		go func() {
			defer ended.Done()
			started.Done()
			release.Wait()
		}()
	}
	started.Wait()
	release.Done()
	ended.Wait()
}

// goroutinePeak samples runtime.NumGoroutine until stopped.
type goroutinePeak struct {
	peak atomic.Int64
	stop chan struct{}
	done chan struct{}
}

func watchGoroutines() *goroutinePeak {
	g := &goroutinePeak{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(g.done)
		tk := time.NewTicker(2 * time.Millisecond)
		defer tk.Stop()
		for {
			if n := int64(runtime.NumGoroutine()); n > g.peak.Load() {
				g.peak.Store(n)
			}
			select {
			case <-g.stop:
				return
			case <-tk.C:
			}
		}
	}()
	return g
}

func (g *goroutinePeak) end() int64 {
	close(g.stop)
	<-g.done
	return g.peak.Load()
}

// heapBaseline spawns as many goroutines as the run may peak at, then
// measures the live heap.
func heapBaseline(reserve int) uint64 {
	spawnGoroutines(reserve)
	return heapNow()
}

// warm opens and closes one connection, so that pools and lazily built
// state exist before the heap's baseline is taken.
func warm(t *testing.T, ls *loadServer) {
	t.Helper()
	c, err := dialLoad(ls.url(0, "warm"))
	if err != nil {
		t.Fatal(err)
	}
	<-c.joinedMe
	if err := c.send("warm"); err != nil {
		t.Fatal(err)
	}
	<-c.ownBack
	if err := c.close(); err != nil {
		t.Fatal(err)
	}
	wstest.WaitFor(t, "the warm-up connection gone", func() bool { return ls.ep.Stats().Connections == 0 })
	runtime.GC()
}
