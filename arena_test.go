package wsroom_test

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/wstest"
)

// The arena is where the hostile-client tests happen: a real server whose
// endpoint subscribes every connection to the room of its path and
// publishes each valid message a client sends to that room, numbered per
// sender. A ticker publishes to the room "lobby" every tickEvery; an
// auditor (a func subscriber) counts everything published there; a
// witness, a well-behaved client in the same room, must receive every one
// of those messages, in order per sender, with no stall, while the test's
// hostile clients do their worst.

// tickEvery is the ticker's period.
const tickEvery = 2 * time.Millisecond

// maxStall is the longest the witness may go without a tick while the
// ticker runs: a thousand periods. Anything longer means a hostile client
// held up the service of others.
const maxStall = 2 * time.Second

type arena struct {
	t     testing.TB
	stats func() wsroom.Stats
	rooms *wsroom.Rooms[chatOut]
	srv   *httptest.Server
	url   string // http URL of the room "lobby"
	logs  *logWatch

	published atomic.Int64 // messages published to the lobby, end marker excluded
	roundTrip chan struct{}

	w        *arenaWitness
	stopTick chan struct{}
	tickDone chan struct{}
	ticks    atomic.Int64
	unaudit  func()
	finished bool
}

// arenaOptions change how the arena's HTTP server is built.
type arenaOptions struct {
	readHeaderTimeout time.Duration
	rooms             []wsroom.RoomsOption
	noTicker          bool // the witness gets only what clients publish
}

// newArena starts an arena whose endpoint decodes In; toOut turns a valid
// inbound message into the room message (From and Seq are filled in).
func newArena[In any](t testing.TB, ao arenaOptions, toOut func(In) chatOut, opts ...wsroom.Option) *arena {
	t.Helper()
	a := &arena{t: t, rooms: wsroom.NewRooms[chatOut](ao.rooms...), logs: new(logWatch), roundTrip: make(chan struct{}, 1)}
	opts = append([]wsroom.Option{wsroom.WithLogger(slog.New(a.logs))}, opts...)
	ep := wsroom.New(func(c *wsroom.Conn[chatOut], msgs iter.Seq2[In, error]) error {
		room := a.rooms.Room(c.Request().PathValue("room"))
		leave, err := room.Subscribe(c)
		if err != nil {
			return &wsroom.CloseError{Code: 1013, Reason: err.Error()}
		}
		defer leave()
		seq := 0
		for msg, err := range msgs {
			if err != nil {
				return err
			}
			seq++
			out := toOut(msg)
			out.From, out.Seq = c.ID(), seq
			if err := room.Publish(out); err != nil {
				return err
			}
		}
		return nil
	}, opts...)
	a.stats = ep.Stats
	mux := http.NewServeMux()
	mux.Handle("GET /ws/{room}", ep)
	a.srv = httptest.NewUnstartedServer(mux)
	a.srv.Config.ReadHeaderTimeout = ao.readHeaderTimeout
	a.srv.Start()
	a.url = a.srv.URL + "/ws/lobby"
	t.Cleanup(func() {
		a.stopTicker()
		ctx, cancel := context.WithTimeout(context.Background(), wstest.Timeout)
		defer cancel()
		if err := ep.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		a.srv.Close()
		if a.unaudit != nil {
			a.unaudit()
		}
		if n := a.logs.panics.Load(); n > 0 {
			t.Errorf("%d handler panics were logged: %s", n, a.logs.text())
		}
	})

	lobby := a.rooms.Room("lobby")
	var err error
	a.unaudit, err = lobby.SubscribeFunc(func(m chatOut) {
		if m.Type == "end" {
			return
		}
		a.published.Add(1)
		if m.Type == "message" && m.Content == "round trip" {
			select {
			case a.roundTrip <- struct{}{}:
			default:
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	a.w = &arenaWitness{c: wstest.Dial(t, a.url), last: map[uint64]int{}, done: make(chan struct{})}
	wstest.WaitFor(t, "the witness in the lobby", func() bool { return lobby.Len() == 2 })
	go a.w.run()
	a.stopTick, a.tickDone = make(chan struct{}), make(chan struct{})
	if ao.noTicker {
		close(a.tickDone)
	} else {
		go a.tick()
	}
	return a
}

func chatToOut(m chatIn) chatOut { return chatOut{Type: m.Type, Content: m.Content} }

// tick publishes a tick to the lobby every tickEvery until stopped.
func (a *arena) tick() {
	defer close(a.tickDone)
	lobby := a.rooms.Room("lobby")
	tk := time.NewTicker(tickEvery)
	defer tk.Stop()
	for n := 1; ; n++ {
		select {
		case <-a.stopTick:
			return
		case <-tk.C:
		}
		_ = lobby.Publish(chatOut{Type: "tick", Seq: n})
		a.ticks.Add(1)
	}
}

func (a *arena) stopTicker() {
	select {
	case <-a.stopTick:
	default:
		close(a.stopTick)
	}
	<-a.tickDone
}

// finish ends the hostile phase: it waits until only the witness is
// connected (every hostile handler has returned, so nothing more will be
// published by them), checks the witness's own round trip, publishes the
// end marker and checks that the witness received exactly what was
// published, in order, without a stall. It returns the witness's count.
func (a *arena) finish() int64 {
	t := a.t
	t.Helper()
	a.finished = true
	wstest.WaitFor(t, "only the witness connected", func() bool { return a.stats().Connections == 1 })
	a.stopTicker()
	a.w.c.Send(t, chatIn{Type: "message", Content: "round trip"})
	select {
	case <-a.roundTrip:
	case <-time.After(wstest.Timeout):
		t.Fatal("the witness's own message was never published")
	}
	// The auditor hears a message before the witness's queue has it: wait
	// for the witness, so that the end marker cannot overtake it.
	wstest.WaitFor(t, "the witness's own message back", func() bool {
		a.w.mu.Lock()
		defer a.w.mu.Unlock()
		return a.w.sawRoundTrip
	})
	_ = a.rooms.Room("lobby").Publish(chatOut{Type: "end"})
	select {
	case <-a.w.done:
	case <-time.After(wstest.Timeout):
		t.Fatalf("the witness did not reach the end marker: %d of %d messages", a.w.received.Load(), a.published.Load())
	}
	a.w.mu.Lock()
	defer a.w.mu.Unlock()
	for _, e := range a.w.errs {
		t.Error("witness: " + e)
	}
	got, want := a.w.received.Load(), a.published.Load()
	if got != want {
		t.Errorf("witness received %d messages, %d were published to its room", got, want)
	}
	if a.w.maxGap > maxStall {
		t.Errorf("the witness went %v without a tick (ticks every %v)", a.w.maxGap, tickEvery)
	}
	if !a.w.sawRoundTrip {
		t.Error("the witness's own message did not come back to it")
	}
	t.Logf("witness: expected %d, received %d (%d ticks), longest gap between ticks %v",
		want, got, a.ticks.Load(), a.w.maxGap.Round(time.Millisecond))
	return got
}

// arenaWitness consumes the witness's events in the background.
type arenaWitness struct {
	c        *wstest.Client
	received atomic.Int64
	done     chan struct{}

	mu           sync.Mutex
	errs         []string
	last         map[uint64]int // sender → last seq
	lastTick     time.Time
	maxGap       time.Duration
	sawRoundTrip bool
}

func (w *arenaWitness) fail(format string, args ...any) {
	w.mu.Lock()
	if len(w.errs) < 10 {
		w.errs = append(w.errs, fmt.Sprintf(format, args...))
	}
	w.mu.Unlock()
}

func (w *arenaWitness) run() {
	defer close(w.done)
	for {
		// Until the end marker or the connection's end (the test's
		// cleanup closes the witness).
		ev, ok := w.c.NextWithin(100 * time.Millisecond)
		if !ok {
			continue
		}
		if ev.Closed {
			w.fail("connection closed: %d %q %v", ev.Code, ev.Reason, ev.Err)
			return
		}
		var m chatOut
		if err := json.Unmarshal(ev.Data, &m); err != nil {
			w.fail("message %q: %v", ev.Data, err)
			continue
		}
		if m.Type == "end" {
			return
		}
		w.received.Add(1)
		w.mu.Lock()
		if m.Seq != w.last[m.From]+1 {
			if len(w.errs) < 10 {
				w.errs = append(w.errs, fmt.Sprintf("sender %d: message %d after %d (lost or reordered)", m.From, m.Seq, w.last[m.From]))
			}
		}
		w.last[m.From] = m.Seq
		if m.Type == "tick" {
			now := time.Now()
			if !w.lastTick.IsZero() {
				w.maxGap = max(w.maxGap, now.Sub(w.lastTick))
			}
			w.lastTick = now
		}
		if m.Type == "message" && m.Content == "round trip" {
			w.sawRoundTrip = true
		}
		w.mu.Unlock()
	}
}

// logWatch is a slog handler that remembers what the endpoint logged; a
// panic inside the library (gws's reader runs in the handler's goroutine)
// is recovered and logged as a handler panic, so the arena fails on one.
type logWatch struct {
	panics atomic.Int64
	mu     sync.Mutex
	lines  []string
}

func (l *logWatch) Enabled(context.Context, slog.Level) bool { return true }

func (l *logWatch) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.Key + "=" + a.Value.String())
		return true
	})
	if strings.Contains(r.Message, "panicked") {
		l.panics.Add(1)
	}
	l.mu.Lock()
	if len(l.lines) < 1000 {
		l.lines = append(l.lines, b.String())
	}
	l.mu.Unlock()
	return nil
}

func (l *logWatch) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logWatch) WithGroup(string) slog.Handler      { return l }

func (l *logWatch) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// heapWatch samples the live heap until stopped and reports the peak above
// the level when it started.
type heapWatch struct {
	base, peak uint64
	stop, done chan struct{}
	once       sync.Once
}

// watchHeap starts sampling; the test's cleanup stops a watch that a
// failing test left running.
func watchHeap(t testing.TB) *heapWatch {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	h := &heapWatch{base: ms.HeapAlloc, peak: ms.HeapAlloc, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(h.done)
		tk := time.NewTicker(5 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-h.stop:
				return
			case <-tk.C:
			}
			runtime.ReadMemStats(&ms)
			h.peak = max(h.peak, ms.HeapAlloc)
		}
	}()
	t.Cleanup(func() { h.growth() })
	return h
}

// growth stops sampling and returns the peak growth of the heap, in bytes.
func (h *heapWatch) growth() uint64 {
	h.once.Do(func() { close(h.stop) })
	<-h.done
	return h.peak - h.base
}

// heapSettles waits until the live heap is back within slack bytes of base
// (collecting, as pools empty over two cycles) and returns the final level.
func heapSettles(t testing.TB, base, slack uint64) uint64 {
	t.Helper()
	var ms runtime.MemStats
	deadline := time.Now().Add(wstest.Timeout)
	for {
		runtime.GC()
		runtime.GC() // sync.Pools keep their contents for one cycle more
		runtime.ReadMemStats(&ms)
		if ms.HeapAlloc <= base+slack {
			return ms.HeapAlloc
		}
		if time.Now().After(deadline) {
			t.Fatalf("live heap %d MiB, %d MiB at the start: not back within %d MiB", ms.HeapAlloc>>20, base>>20, slack>>20)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func heapNow() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
