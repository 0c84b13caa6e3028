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
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
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

// The chat contract every hub serves, wsroom's, raw gws's and Bun's
// (internal/bunpeer/server.js), so that one set of clients drives them
// all:
//
//   - A client dials <URL>?room=<room>&id=<member>, and is joined to the
//     room. With announcing on, the join is announced to the room as one
//     step with it: {"type":"joined","room":R,"from":member,...}, which the
//     joiner receives before anything else.
//   - A client's message {"type":"message","text":...,"seq":S,"sent":T} is
//     checked (a JSON object whose type is "message") and published to its
//     room as {"type":"message","room":R,"from":member,"text":...,"seq":S,
//     "sent":T}, to every member, the sender too.
//   - Hub.Publish publishes the benchmark's own message (from -1) to a
//     room: wsroom's and gws's in this process, Bun's through a control
//     connection (see bunHub).
//
// Every frame is an e2eMsg as encoding/json writes it; Bun writes the same
// bytes.

// e2eMsg is the frame the end-to-end benchmarks deliver, about 120 bytes
// of JSON. From, Seq and Sent are what the client process reads (see
// loadgen).
type e2eMsg struct {
	Type string `json:"type"`
	Room string `json:"room"`
	From int    `json:"from"` // the member who sent it, -1 for the benchmark's publisher
	Text string `json:"text"`
	Seq  int64  `json:"seq"`
	Sent int64  `json:"sent"` // send or publish time, Unix microseconds
}

// e2eIn is what clients send: wsroom decodes it and validates it against
// its schema, gws decodes it, Bun parses it and checks its fields by hand.
type e2eIn struct {
	Type string `json:"type" jsonschema:"enum=message"`
	Text string `json:"text" jsonschema:"maxLength=1000"`
	Seq  int64  `json:"seq"`
	Sent int64  `json:"sent"`
}

// benchText is the text of the benchmark publisher's messages and of the
// clients' (see loadgen).
const benchText = "hello, everyone in the room!"

// hub is the server side of an end-to-end benchmark, serving the chat
// contract above.
type hub interface {
	URL() string
	Joined() <-chan struct{} // closed once the expected number of connections have joined
	Members() int            // members of every room
	Publish(m *e2eMsg) error // publishes m to room m.Room
	Problems() error         // deliveries the server failed or refused, connections it lost
	Close(ctx context.Context) error
	server
}

// server is the process that serves a hub, for measurements.
type server interface {
	CPU() (time.Duration, error) // CPU time (user+sys, every thread) used so far
	RSS() (uint64, error)        // resident memory, bytes
	Settle() error               // collects garbage and returns free memory to the OS
}

// hubConfig is what a hub is made for.
type hubConfig struct {
	conns    int             // Joined closes once this many have joined
	announce bool            // each join is announced to its room
	options  []wsroom.Option // more options for wsroom's endpoint
}

// chatMember reads the room and member id a client dialled with.
func chatMember(r *http.Request) (room string, id int, err error) {
	q := r.URL.Query()
	room = q.Get("room")
	id, err = strconv.Atoi(q.Get("id"))
	if room == "" || err != nil {
		return "", 0, fmt.Errorf("want ?room=<name>&id=<int>, got %q", r.URL.RawQuery)
	}
	return room, id, nil
}

// thisProcess is the server of the hubs that run in the benchmark's own
// process.
type thisProcess struct{}

func (thisProcess) CPU() (time.Duration, error) { return loadgen.CPUTime(), nil }
func (thisProcess) RSS() (uint64, error)        { return statmRSS("/proc/self/statm") }
func (thisProcess) Settle() error {
	settle()
	return nil
}

// wsroomHub is the wsroom side: an Endpoint, with default options, whose
// handler joins each connection to its room (Room.Join when announcing,
// Room.Subscribe otherwise) and publishes every message it receives, each
// one decoded and validated by the endpoint; Publish is Room.Publish.
type wsroomHub struct {
	thisProcess
	ep     *wsroom.Endpoint[e2eIn, e2eMsg]
	rooms  *wsroom.Rooms[e2eMsg]
	srv    *loopbackServer
	joined *countdown
}

func newWsroomHub(cfg hubConfig) (hub, error) {
	h := &wsroomHub{joined: newCountdown(cfg.conns), rooms: wsroom.NewRooms[e2eMsg]()}
	h.ep = wsroom.New(func(c *wsroom.Conn[e2eMsg], msgs iter.Seq2[e2eIn, error]) error {
		name, id, err := chatMember(c.Request())
		if err != nil {
			return err
		}
		room := h.rooms.Room(name)
		var leave func()
		if cfg.announce {
			leave, err = room.Join(c, e2eMsg{Type: "joined", Room: name, From: id})
		} else {
			leave, err = room.Subscribe(c)
		}
		if err != nil {
			return err
		}
		defer leave()
		h.joined.done()
		for in, err := range msgs {
			if err != nil {
				return err
			}
			if err := room.Publish(e2eMsg{Type: in.Type, Room: name, From: id, Text: in.Text, Seq: in.Seq, Sent: in.Sent}); err != nil {
				return err
			}
		}
		return nil
	}, append([]wsroom.Option{wsroom.WithLogger(slog.New(slog.DiscardHandler))}, cfg.options...)...)
	var err error
	h.srv, err = serveLoopback(h.ep)
	return h, err
}

func (h *wsroomHub) URL() string             { return h.srv.url }
func (h *wsroomHub) Joined() <-chan struct{} { return h.joined.ch }
func (h *wsroomHub) Publish(m *e2eMsg) error { return h.rooms.Room(m.Room).Publish(*m) }

func (h *wsroomHub) Members() int {
	n := 0
	for _, r := range h.rooms.All() {
		n += r.Len()
	}
	return n
}

func (h *wsroomHub) Problems() error {
	st := h.ep.Stats()
	if st.Dropped != 0 || st.SlowConsumerCloses != 0 || st.Connections != st.Accepted || st.Rejected != 0 {
		return fmt.Errorf("wsroom: %d messages dropped, %d slow-consumer closes, %d messages rejected, %d of %d connections open",
			st.Dropped, st.SlowConsumerCloses, st.Rejected, st.Connections, st.Accepted)
	}
	return nil
}

func (h *wsroomHub) Close(ctx context.Context) error {
	h.srv.close()
	return h.ep.Shutdown(ctx)
}

// gwsHub is the raw gws side: a gws.Upgrader with gws's default options,
// upgrading in ServeHTTP, and each room a slice of connections under a
// mutex (a connection joins in OnOpen and leaves in OnClose). A join
// announced is broadcast under the room's mutex, so the joiner receives it
// first. A message received is decoded with encoding/json (no schema),
// its type checked, and published. Publish encodes the message with
// encoding/json, as wsroom does, and writes it to every member with one
// gws.Broadcaster. With inline set, ReadLoop runs in ServeHTTP, as a
// wsroom handler once did; otherwise in a goroutine of its own, as gws's
// README recommends.
type gwsHub struct {
	gws.BuiltinEventHandler
	thisProcess
	cfg      hubConfig
	upgrader *gws.Upgrader
	inline   bool
	srv      *loopbackServer
	joined   *countdown

	mu    sync.Mutex
	rooms map[string]*gwsRoom

	closing atomic.Bool
	lost    atomic.Int64   // connections that ended before Close
	refused atomic.Int64   // messages that were not JSON or not of type message
	reading sync.WaitGroup // one count per upgraded connection, until its ReadLoop returns
}

// gwsRoom is a room of the gws hub.
type gwsRoom struct {
	name  string
	mu    sync.Mutex
	conns []*gws.Conn
}

// gwsMember is what a gws connection's session holds.
type gwsMember struct {
	room *gwsRoom
	id   int
}

const gwsMemberKey = "member"

func newGwsHub(cfg hubConfig, inline bool) (hub, error) {
	h := &gwsHub{cfg: cfg, inline: inline, joined: newCountdown(cfg.conns), rooms: make(map[string]*gwsRoom)}
	h.upgrader = gws.NewUpgrader(h, nil)
	var err error
	h.srv, err = serveLoopback(h)
	return h, err
}

func (h *gwsHub) room(name string) *gwsRoom {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.rooms[name]
	if r == nil {
		r = &gwsRoom{name: name}
		h.rooms[name] = r
	}
	return r
}

func (h *gwsHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name, id, err := chatMember(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	socket, err := h.upgrader.Upgrade(w, r)
	if err != nil {
		return
	}
	socket.Session().Store(gwsMemberKey, &gwsMember{room: h.room(name), id: id})
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

func memberOf(s *gws.Conn) *gwsMember {
	m, _ := s.Session().Load(gwsMemberKey)
	return m.(*gwsMember)
}

func (h *gwsHub) OnOpen(s *gws.Conn) {
	m := memberOf(s)
	r := m.room
	r.mu.Lock()
	r.conns = append(r.conns, s)
	var err error
	if h.cfg.announce {
		err = r.broadcastLocked(&e2eMsg{Type: "joined", Room: r.name, From: m.id})
	}
	r.mu.Unlock()
	if err != nil {
		h.lost.Add(1)
	}
	h.joined.done()
}

func (h *gwsHub) OnClose(s *gws.Conn, _ error) {
	r := memberOf(s).room
	r.mu.Lock()
	for i, c := range r.conns {
		if c == s {
			last := len(r.conns) - 1
			r.conns[i], r.conns[last] = r.conns[last], nil
			r.conns = r.conns[:last]
			break
		}
	}
	r.mu.Unlock()
	if !h.closing.Load() {
		h.lost.Add(1)
	}
}

func (h *gwsHub) OnMessage(s *gws.Conn, msg *gws.Message) {
	var in e2eIn
	err := json.Unmarshal(msg.Bytes(), &in)
	_ = msg.Close()
	if err != nil || in.Type != "message" {
		h.refused.Add(1)
		return
	}
	m := memberOf(s)
	m.room.publish(&e2eMsg{Type: in.Type, Room: m.room.name, From: m.id, Text: in.Text, Seq: in.Seq, Sent: in.Sent})
}

func (h *gwsHub) URL() string             { return h.srv.url }
func (h *gwsHub) Joined() <-chan struct{} { return h.joined.ch }
func (h *gwsHub) Publish(m *e2eMsg) error { return h.room(m.Room).publish(m) }

func (h *gwsHub) Members() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, r := range h.rooms {
		r.mu.Lock()
		n += len(r.conns)
		r.mu.Unlock()
	}
	return n
}

func (r *gwsRoom) publish(m *e2eMsg) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.broadcastLocked(m)
}

// broadcastLocked encodes m and writes it to every member; r.mu is held.
func (r *gwsRoom) broadcastLocked(m *e2eMsg) error {
	payload, err := json.Marshal(m)
	if err != nil {
		return err
	}
	bc := gws.NewBroadcaster(gws.OpcodeText, payload)
	for _, s := range r.conns {
		if err = bc.Broadcast(s, nil); err != nil {
			break
		}
	}
	_ = bc.Close()
	return err
}

func (h *gwsHub) Problems() error {
	if n, m := h.lost.Load(), h.refused.Load(); n != 0 || m != 0 {
		return fmt.Errorf("gws: %d connections lost, %d messages refused", n, m)
	}
	return nil
}

func (h *gwsHub) Close(ctx context.Context) error {
	h.closing.Store(true)
	h.srv.close()
	h.mu.Lock()
	for _, r := range h.rooms {
		r.mu.Lock()
		for _, s := range r.conns {
			_ = s.NetConn().Close() // normally gone already, with the client process
		}
		r.mu.Unlock()
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
// every one has joined the hub's room (and, announcing, until every join
// has been announced).
func connect(h hub, p *loadgen.Process, n int) error {
	return connectWithin(h, p, n, setupTimeout)
}

// connectWithin is connect with a timeout of its own, for dialling and for
// joining each.
func connectWithin(h hub, p *loadgen.Process, n int, timeout time.Duration) error {
	if err := p.Dial(timeout); err != nil {
		return err
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-h.Joined():
		return nil
	case err := <-p.Errs():
		return fmt.Errorf("client process: %w", err)
	case <-p.Exited():
		return fmt.Errorf("client process exited (%v)", p.ExitErr())
	case <-t.C:
		return fmt.Errorf("%d of %d connections joined within %v", h.Members(), n, timeout)
	}
}

// newHubFunc makes a hub: newWsroomHub, newGwsHub's or newBunHub's.
type newHubFunc func(hubConfig) (hub, error)

// session is a hub and the client process connected to it.
type session struct {
	hub  hub
	proc *loadgen.Process
	n    int
}

// startSession starts a hub and a client process that will open n
// connections to it, split between rooms r0, r1, ... (see loadgen). On
// error the session holds what was started, for close.
func startSession(newHub newHubFunc, n, rooms int, announce bool) (*session, error) {
	return startSessionFor(newHub, hubConfig{conns: n, announce: announce}, loadgen.Config{Conns: n, Rooms: rooms, Announce: announce})
}

// startSessionFor is startSession with the hub's and the clients'
// configurations spelled out; clients.URL is filled in.
func startSessionFor(newHub newHubFunc, cfg hubConfig, clients loadgen.Config) (*session, error) {
	s := &session{n: clients.Conns}
	var err error
	if s.hub, err = newHub(cfg); err != nil {
		return s, err
	}
	clients.URL = s.hub.URL()
	s.proc, err = loadgen.Start(clients)
	return s, err
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

// mustSession is startSession, closing what was started and failing b on
// error.
func mustSession(b *testing.B, newHub newHubFunc, n, rooms int, announce bool) *session {
	return mustSessionFor(b, newHub, hubConfig{conns: n, announce: announce}, loadgen.Config{Conns: n, Rooms: rooms, Announce: announce})
}

// mustSessionFor is startSessionFor, closing what was started and failing
// b on error.
func mustSessionFor(b *testing.B, newHub newHubFunc, cfg hubConfig, clients loadgen.Config) *session {
	s, err := startSessionFor(newHub, cfg, clients)
	if err != nil {
		closeSession(b, s)
		b.Fatal(err)
	}
	return s
}

// closeSession closes s, reporting an error to b.
func closeSession(b *testing.B, s *session) {
	if err := s.close(); err != nil {
		b.Errorf("close: %v", err)
	}
}

// settle collects garbage, twice so that sync.Pools are emptied too, and
// returns freed memory to the operating system.
func settle() {
	runtime.GC()
	debug.FreeOSMemory()
}

// fanoutPublisher is the From of the benchmark's own messages (see
// loadgen's publisherID).
const fanoutPublisher = -1
