//go:build linux

package wsroom_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"log"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lxzan/gws"
	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/loadgen"
)

// The servers the end-to-end benchmarks (BenchmarkFanout,
// BenchmarkIdleMemory) measure, wsroom's and raw gws's, and what runs
// them. They serve real WebSocket clients over loopback sockets; the
// clients run in a separate process, this test binary started again by
// loadgen.Start (see TestMain in main_test.go), so that the server's CPU
// time and memory, read from this process, are the server's alone.

const (
	setupTimeout = time.Minute      // bounds dialling, joining and each exchange with the client process
	closeTimeout = 30 * time.Second // bounds tearing a benchmark's server and clients down
)

// e2eMsg is the message the end-to-end benchmarks publish, about 120 bytes
// of JSON. Seq and Sent are what the client process reads (see loadgen).
type e2eMsg struct {
	Type string `json:"type"`
	Room string `json:"room"`
	From string `json:"from"`
	Text string `json:"text"`
	Seq  int64  `json:"seq"`
	Sent int64  `json:"sent"` // publish time, Unix nanoseconds
}

// e2eIn is what clients could send; they send nothing.
type e2eIn struct {
	Type string `json:"type"`
}

// hub is the server side of an end-to-end benchmark: one room that every
// connection joins, served by wsroom or by raw gws.
type hub interface {
	URL() string
	Joined() <-chan struct{} // closed once the expected number of connections have joined
	Members() int
	Publish(m *e2eMsg) error
	Problems() error // deliveries the server failed or refused, connections it lost
	Close(ctx context.Context) error
}

// wsroomHub is the wsroom side: an Endpoint, with default options, whose
// handler subscribes each connection to one room and ranges over its
// messages; Publish is Room.Publish.
type wsroomHub struct {
	ep     *wsroom.Endpoint[e2eIn, e2eMsg]
	room   *wsroom.Room[e2eMsg]
	srv    *loopbackServer
	joined *countdown
}

func newWsroomHub(n int) (hub, error) {
	h := &wsroomHub{joined: newCountdown(n), room: wsroom.NewRooms[e2eMsg]().Room("bench")}
	h.ep = wsroom.New(func(c *wsroom.Conn[e2eMsg], msgs iter.Seq2[e2eIn, error]) error {
		leave, err := h.room.Subscribe(c)
		if err != nil {
			return err
		}
		defer leave()
		h.joined.done()
		for _, err := range msgs {
			if err != nil {
				return err
			}
		}
		return nil
	}, wsroom.WithLogger(slog.New(slog.DiscardHandler)))
	var err error
	h.srv, err = serveLoopback(h.ep)
	return h, err
}

func (h *wsroomHub) URL() string             { return h.srv.url }
func (h *wsroomHub) Joined() <-chan struct{} { return h.joined.ch }
func (h *wsroomHub) Members() int            { return h.room.Len() }
func (h *wsroomHub) Publish(m *e2eMsg) error { return h.room.Publish(*m) }

func (h *wsroomHub) Problems() error {
	st := h.ep.Stats()
	if st.Dropped != 0 || st.SlowConsumerCloses != 0 || st.Connections != st.Accepted {
		return fmt.Errorf("wsroom: %d messages dropped, %d slow-consumer closes, %d of %d connections open",
			st.Dropped, st.SlowConsumerCloses, st.Connections, st.Accepted)
	}
	return nil
}

func (h *wsroomHub) Close(ctx context.Context) error {
	h.srv.close()
	return h.ep.Shutdown(ctx)
}

// gwsHub is the raw gws side: a gws.Upgrader with gws's default options,
// upgrading in ServeHTTP, and the set of open connections under a mutex
// (a connection joins in OnOpen and leaves in OnClose). Publish encodes
// the message with encoding/json, as wsroom does, and writes it to every
// connection with one gws.Broadcaster. With inline set, ReadLoop runs in
// ServeHTTP, as a wsroom handler does; otherwise in a goroutine of its
// own, as gws's README recommends.
type gwsHub struct {
	gws.BuiltinEventHandler
	upgrader *gws.Upgrader
	inline   bool
	srv      *loopbackServer
	joined   *countdown

	mu    sync.Mutex
	conns []*gws.Conn

	closing atomic.Bool
	lost    atomic.Int64   // connections that ended before Close
	reading sync.WaitGroup // one count per upgraded connection, until its ReadLoop returns
}

func newGwsHub(n int, inline bool) (hub, error) {
	h := &gwsHub{inline: inline, joined: newCountdown(n)}
	h.upgrader = gws.NewUpgrader(h, nil)
	var err error
	h.srv, err = serveLoopback(h)
	return h, err
}

func (h *gwsHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	socket, err := h.upgrader.Upgrade(w, r)
	if err != nil {
		return
	}
	h.reading.Add(1)
	if h.inline {
		defer h.reading.Done()
		socket.ReadLoop()
		return
	}
	go func() {
		defer h.reading.Done()
		socket.ReadLoop()
	}()
}

func (h *gwsHub) OnOpen(s *gws.Conn) {
	h.mu.Lock()
	h.conns = append(h.conns, s)
	h.mu.Unlock()
	h.joined.done()
}

func (h *gwsHub) OnClose(s *gws.Conn, _ error) {
	h.mu.Lock()
	for i, c := range h.conns {
		if c == s {
			last := len(h.conns) - 1
			h.conns[i], h.conns[last] = h.conns[last], nil
			h.conns = h.conns[:last]
			break
		}
	}
	h.mu.Unlock()
	if !h.closing.Load() {
		h.lost.Add(1)
	}
}

func (h *gwsHub) OnMessage(_ *gws.Conn, m *gws.Message) { _ = m.Close() }

func (h *gwsHub) URL() string             { return h.srv.url }
func (h *gwsHub) Joined() <-chan struct{} { return h.joined.ch }

func (h *gwsHub) Members() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}

func (h *gwsHub) Publish(m *e2eMsg) error {
	payload, err := json.Marshal(m)
	if err != nil {
		return err
	}
	bc := gws.NewBroadcaster(gws.OpcodeText, payload)
	h.mu.Lock()
	for _, s := range h.conns {
		if err = bc.Broadcast(s, nil); err != nil {
			break
		}
	}
	h.mu.Unlock()
	_ = bc.Close()
	return err
}

func (h *gwsHub) Problems() error {
	if n := h.lost.Load(); n != 0 {
		return fmt.Errorf("gws: %d connections lost", n)
	}
	return nil
}

func (h *gwsHub) Close(ctx context.Context) error {
	h.closing.Store(true)
	h.srv.close()
	h.mu.Lock()
	for _, s := range h.conns {
		_ = s.NetConn().Close() // normally gone already, with the client process
	}
	h.mu.Unlock()
	done := make(chan struct{})
	go func() {
		h.reading.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("gws: read loops still running: %w", ctx.Err())
	}
}

// loopbackServer is an http.Server on a loopback port of its own.
type loopbackServer struct {
	srv  *http.Server
	url  string
	done chan struct{}
}

func serveLoopback(h http.Handler) (*loopbackServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &loopbackServer{
		srv:  &http.Server{Handler: h, ErrorLog: log.New(io.Discard, "", 0)},
		url:  "ws://" + ln.Addr().String() + "/ws",
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln)
	}()
	return s, nil
}

// close stops accepting; upgraded connections are the hub's to close.
func (s *loopbackServer) close() {
	if s == nil {
		return
	}
	_ = s.srv.Close()
	<-s.done
}

// countdown closes ch when done has been called n times.
type countdown struct {
	left atomic.Int64
	ch   chan struct{}
}

func newCountdown(n int) *countdown {
	c := &countdown{ch: make(chan struct{})}
	c.left.Store(int64(n))
	return c
}

func (c *countdown) done() {
	if c.left.Add(-1) == 0 {
		close(c.ch)
	}
}

// connect has the client process open its connections and waits until
// every one has joined the hub's room.
func connect(h hub, p *loadgen.Process, n int) error {
	if err := p.Dial(setupTimeout); err != nil {
		return err
	}
	t := time.NewTimer(setupTimeout)
	defer t.Stop()
	select {
	case <-h.Joined():
		return nil
	case err := <-p.Errs():
		return fmt.Errorf("client process: %w", err)
	case <-p.Exited():
		return fmt.Errorf("client process exited (%v)", p.ExitErr())
	case <-t.C:
		return fmt.Errorf("%d of %d connections joined within %v", h.Members(), n, setupTimeout)
	}
}

// session is a hub and the client process connected to it.
type session struct {
	hub  hub
	proc *loadgen.Process
	n    int
}

// startSession starts a hub for n connections and a client process that
// opens them. On error the session holds what was started, for close.
func startSession(newHub func(int) (hub, error), n int) (*session, error) {
	s := &session{n: n}
	var err error
	if s.hub, err = newHub(n); err != nil {
		return s, err
	}
	if s.proc, err = loadgen.Start(s.hub.URL(), n); err != nil {
		return s, err
	}
	return s, nil
}

// close ends the client process (its connections close as it exits), then
// the server, which waits for every connection to end.
func (s *session) close() error {
	var errs []error
	if s.proc != nil {
		errs = append(errs, s.proc.Close(closeTimeout))
	}
	if s.hub != nil {
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		errs = append(errs, s.hub.Close(ctx))
		cancel()
	}
	return errors.Join(errs...)
}

// settle collects garbage, twice so that sync.Pools are emptied too, and
// returns freed memory to the operating system.
func settle() {
	runtime.GC()
	debug.FreeOSMemory()
}
