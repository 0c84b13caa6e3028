package pgbroker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/brokertest"
	"github.com/wsroom/wsroom/internal/tcpproxy"
	"github.com/wsroom/wsroom/internal/wstest"
	"github.com/wsroom/wsroom/pgbroker"
)

// atOnce is how soon a call the breaker fails must return.
const atOnce = 50 * time.Millisecond

// While the listener knows PostgreSQL is stopped, Publish, Record and
// History fail at once with ErrUnavailable, which wsroom reports as
// ErrBroker (and a record as ErrNotRecorded, as the chat's error frames
// tell them apart); once the server is back, they work again within two
// seconds.
func TestCallsFailAtOnceWhilePostgreSQLIsStopped(t *testing.T) {
	wstest.CheckGoroutines(t)
	srv := ownServer(t)
	b := newBroker(t, srv.URL, pgbroker.WithPrefix(uniquePrefix())) // the default publish timeout: a second
	defer brokertest.Subscribe(t, b, "room", func([]byte) {})()     // runs the listener
	rooms := wsroom.NewRooms[note](wsroom.WithBroker(b), wsroom.WithHistory(10, time.Minute))
	calls := brokerCalls(b, rooms)
	for _, c := range calls {
		if err := c.call(); err != nil {
			t.Fatalf("%s before the stop: %v", c.name, err)
		}
	}

	errs := b.Stats().ConnErrors
	srv.Stop()
	// The listener notices: its connection ends, and an attempt to make
	// it again goes unanswered.
	wstest.WaitFor(t, "the listener to notice", func() bool { return b.Stats().ConnErrors >= errs+2 })
	slowest := time.Duration(0)
	for _, c := range calls {
		start := time.Now()
		err := c.call()
		took := time.Since(start)
		if !errors.Is(err, pgbroker.ErrUnavailable) || !errors.Is(err, c.is) || took > atOnce {
			t.Fatalf("%s with PostgreSQL stopped returned %v after %v, want ErrUnavailable (and %v) within %v", c.name, err, took, c.is, atOnce)
		}
		slowest = max(slowest, took)
	}
	t.Logf("the slowest of %d calls failed in %v", len(calls), slowest)
	if n := b.Stats().Unavailable; n != int64(len(calls)) {
		t.Fatalf("Stats.Unavailable is %d, want %d", n, len(calls))
	}

	srv.Restart(t)
	restarted := time.Now()
	wstest.WaitWithin(t, 2*time.Second, "publishes to work again", func() bool { return b.Publish("room", []byte(`{}`)) == nil })
	t.Logf("publishing again %v after the restart", time.Since(restarted))
	for _, c := range calls {
		if err := c.call(); err != nil {
			t.Fatalf("%s once PostgreSQL is back: %v", c.name, err)
		}
	}
}

// A server that hangs (the proxy holds its answers): three calls in a row
// wait out the publish timeout, then every call fails at once; every
// probe interval one call tries the server, never two at once; once the
// server answers again, that probe closes the breaker. The Broker has no
// listener (it only publishes), so the breaker alone knows. Every
// publish that returned nil reaches the other process, in order.
func TestAHangingPostgreSQLTripsTheBreakerAndAProbeClosesIt(t *testing.T) {
	wstest.CheckGoroutines(t)
	const timeout = 300 * time.Millisecond
	url, prefix := pgURL(t), pgbroker.WithPrefix(uniquePrefix())
	proxy := tcpproxy.New(t, hostPort(t, url))
	a := newBroker(t, viaProxy(t, url, proxy), prefix, pgbroker.WithPublishTimeout(timeout))
	b := newBroker(t, url, prefix)
	got := newSeqs()
	defer brokertest.Subscribe(t, b, "room", got.deliver)()
	sent := newSeqs()
	var seq atomic.Int64
	publish := func() (time.Duration, error) {
		n := int(seq.Add(1))
		p, _ := json.Marshal(brokertest.Msg{From: "a", Seq: n})
		start := time.Now()
		err := a.Publish("room", p)
		if err == nil {
			sent.add(n)
		}
		return time.Since(start), err
	}
	for range 10 {
		if _, err := publish(); err != nil {
			t.Fatal(err)
		}
	}

	proxy.Stall()
	for i := 1; ; i++ {
		took, err := publish()
		if errors.Is(err, pgbroker.ErrUnavailable) {
			if i != 4 || took > atOnce {
				t.Fatalf("call %d failed with %v after %v, want the fourth to fail at once", i, err, took)
			}
			break
		}
		if err == nil || took < timeout {
			t.Fatalf("call %d with the answers held returned %v after %v, want a timeout after %v", i, err, took, timeout)
		}
	}
	for _, c := range brokerCalls(a, nil) {
		start := time.Now()
		if err := c.call(); !errors.Is(err, pgbroker.ErrUnavailable) || time.Since(start) > atOnce {
			t.Fatalf("%s with the breaker open returned %v after %v, want ErrUnavailable at once", c.name, err, time.Since(start))
		}
	}

	probes := halfOpen(t, publish, 1500*time.Millisecond)
	if n := len(probes); n < 1 || n > 4 {
		t.Fatalf("%d probes in 1.5 s, want 1 to 4 (one per 250 ms interval after the last one's %v)", n, timeout)
	}
	for i := 1; i < len(probes); i++ {
		if probes[i].start.Before(probes[i-1].end) {
			t.Fatalf("probes %d and %d overlapped: %+v", i-1, i, probes)
		}
	}

	proxy.Cut() // the server answers again
	thawed := time.Now()
	wstest.WaitWithin(t, 2*time.Second, "a probe to close the breaker", func() bool { _, err := publish(); return err == nil })
	t.Logf("closed %v after the thaw; %d probes while frozen; Stats %+v", time.Since(thawed), len(probes), a.Stats())
	for range 10 {
		if took, err := publish(); err != nil || took > timeout {
			t.Fatalf("publish after the breaker closed: %v after %v", err, took)
		}
	}
	last := sent.last()
	wstest.WaitFor(t, "the last publish to arrive", func() bool { return got.has(last) })
	if missing := got.missing(sent); missing != "" {
		t.Fatal(missing)
	}
}

// A caller's own deadline says nothing of the server: ReadPresence and
// History calls whose contexts end while the server hangs do not open the
// breaker, and the next publish still tries the server.
func TestCallersDeadlinesDoNotOpenTheBreaker(t *testing.T) {
	wstest.CheckGoroutines(t)
	const timeout = 300 * time.Millisecond
	url := pgURL(t)
	proxy := tcpproxy.New(t, hostPort(t, url))
	a := newBroker(t, viaProxy(t, url, proxy), pgbroker.WithPrefix(uniquePrefix()), pgbroker.WithPublishTimeout(timeout))
	if err := a.Publish("room", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	proxy.Stall()
	for i := range 6 {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		var err error
		if i%2 == 0 {
			_, err = a.ReadPresence(ctx, "room")
		} else {
			_, _, _, err = a.History(ctx, "room", wsroom.Position{}, 10)
		}
		cancel()
		if err == nil || errors.Is(err, pgbroker.ErrUnavailable) {
			t.Fatalf("call %d with a 20 ms deadline: %v, want its deadline's error", i, err)
		}
	}
	start := time.Now()
	err := a.Publish("room", []byte(`{}`))
	if took := time.Since(start); err == nil || errors.Is(err, pgbroker.ErrUnavailable) || took < timeout {
		t.Fatalf("publish after six callers' deadlines: %v after %v, want it to try the server and time out after %v", err, took, timeout)
	}
	proxy.Cut()
}

// Many publishers and recorders at once on a healthy server, through a
// pool smaller than them (calls queue for a connection): not one call
// fails, and the breaker never opens.
func TestConcurrentPublishersOnAHealthyServerNeverOpenTheBreaker(t *testing.T) {
	wstest.CheckGoroutines(t)
	const publishers, each = 32, 100
	a := newBroker(t, pgURL(t), pgbroker.WithPrefix(uniquePrefix()))
	defer brokertest.Subscribe(t, a, "r0", func([]byte) {})() // the listener runs
	var wg sync.WaitGroup
	errs := make(chan error, publishers)
	start := time.Now()
	for i := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range each {
				room, p := fmt.Sprint("r", (i+j)%8), []byte(fmt.Sprintf(`{"from":%d,"seq":%d}`, i, j))
				var err error
				if j%2 == 0 {
					err = a.Publish(room, p)
				} else {
					_, err = a.Record(room, p)
				}
				if err != nil {
					errs <- fmt.Errorf("publisher %d, call %d: %w", i, j, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st := a.Stats()
	t.Logf("%d calls in %v: %+v", publishers*each, time.Since(start), st)
	if st.Unavailable != 0 || st.Published+st.Recorded != publishers*each {
		t.Fatalf("%d calls failed at once, %d of %d taken, want none and all", st.Unavailable, st.Published+st.Recorded, publishers*each)
	}
}

// A room whose row another transaction holds locked makes its publishes
// wait out the timeout, three at once, so that their failures come in a
// row, microseconds apart; but the server answered another room's
// publishes (one every 5 ms) while they waited: the breaker stays
// closed, and not one publish fails at once.
func TestALockedRoomDoesNotOpenTheBreaker(t *testing.T) {
	wstest.CheckGoroutines(t)
	const timeout, lockedPublishers = 200 * time.Millisecond, 3
	url, name := pgURL(t), uniquePrefix()
	a := newBroker(t, url+"&pool_max_conns=8", pgbroker.WithPrefix(name), pgbroker.WithPublishTimeout(timeout))
	if err := a.Publish("locked", []byte(`{}`)); err != nil { // makes its row
		t.Fatal(err)
	}
	admin := newPool(t, url)
	tx, err := admin.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	if _, err := tx.Exec(context.Background(), "SELECT 1 FROM "+name+"_rooms WHERE key = $1 FOR UPDATE", pgbroker.RoomKey("locked")); err != nil {
		t.Fatal(err)
	}

	errs := make(chan error, lockedPublishers)
	var wg sync.WaitGroup
	begin := make(chan struct{})
	for range lockedPublishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-begin
			for i := range 3 {
				err := a.Publish("locked", []byte(`{}`))
				if err == nil || errors.Is(err, pgbroker.ErrUnavailable) {
					errs <- fmt.Errorf("publish %d to the locked room: %v, want its timeout", i, err)
					return
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	close(begin)
	tick := time.NewTicker(5 * time.Millisecond) // a paced load, not a wait for anything
	defer tick.Stop()
	free := 0
	for {
		select {
		case <-tick.C:
		case <-done:
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			t.Logf("%d publishes to another room while the locked one's timed out", free)
			if st := a.Stats(); st.Unavailable != 0 {
				t.Fatalf("%d calls failed at once, want none", st.Unavailable)
			}
			return
		}
		if err := a.Publish("free", []byte(`{}`)); err != nil {
			t.Fatalf("publish %d to another room: %v", free, err)
		}
		free++
	}
}

// note is the message of the tests' registries with history.
type note struct {
	Text string `json:"text"`
}

// A brokerCall is a call of the Broker, with the error wsroom reports it
// by.
type brokerCall struct {
	name string
	call func() error
	is   error
}

// brokerCalls returns b's calls that reach PostgreSQL, and those of
// rooms (a registry with history on b), if not nil.
func brokerCalls(b *pgbroker.Broker, rooms *wsroom.Rooms[note]) []brokerCall {
	ctx := context.Background()
	rec := []wsroom.PresenceRecord{{ID: "o-1", Owner: "o", Key: "ann"}}
	calls := []brokerCall{
		{"Publish", func() error { return b.Publish("room", []byte(`{}`)) }, wsroom.ErrBroker},
		{"Record", func() error { _, err := b.Record("room", []byte(`{}`)); return err }, wsroom.ErrBroker},
		{"History", func() error { _, _, _, err := b.History(ctx, "room", wsroom.Position{}, 10); return err }, wsroom.ErrBroker},
		{"PutPresence", func() error { return b.PutPresence("room", rec, time.Minute) }, wsroom.ErrBroker},
		{"ReadPresence", func() error { _, err := b.ReadPresence(ctx, "room"); return err }, wsroom.ErrBroker},
	}
	if rooms != nil {
		calls = append(calls,
			brokerCall{"Room.Publish", func() error { return rooms.Room("room").Publish(note{Text: "hi"}) }, wsroom.ErrNotRecorded},
			brokerCall{"Room.PublishEphemeral", func() error { return rooms.Room("room").PublishEphemeral(note{Text: "hi"}) }, wsroom.ErrBroker},
		)
	}
	return calls
}

// A span is when a call ran.
type span struct{ start, end time.Time }

// halfOpen publishes from four goroutines, each every 2 ms, for d, while
// the breaker is open and the server hangs, and returns the probes (the
// calls that tried the server), in order. Every other call must fail at
// once with ErrUnavailable.
func halfOpen(t *testing.T, publish func() (time.Duration, error), d time.Duration) []span {
	t.Helper()
	var (
		mu     sync.Mutex
		probes []span
		wg     sync.WaitGroup
		bad    = make(chan error, 4)
	)
	stop := time.Now().Add(d)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(2 * time.Millisecond) // a paced load, not a wait for anything
			defer tick.Stop()
			for now := range tick.C {
				if now.After(stop) {
					return
				}
				start := time.Now()
				took, err := publish()
				switch {
				case errors.Is(err, pgbroker.ErrUnavailable) && took <= atOnce:
				case err != nil && !errors.Is(err, pgbroker.ErrUnavailable) && took > atOnce:
					mu.Lock()
					probes = append(probes, span{start, start.Add(took)})
					mu.Unlock()
				default:
					bad <- fmt.Errorf("a call while open returned %v after %v, want ErrUnavailable at once or a probe's timeout", err, took)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(bad)
	for err := range bad {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for i := 1; i < len(probes); i++ { // sort by start: few, nearly in order
		for j := i; j > 0 && probes[j].start.Before(probes[j-1].start); j-- {
			probes[j], probes[j-1] = probes[j-1], probes[j]
		}
	}
	return probes
}

// seqs is the set of sequence numbers a test sent or received, in order.
type seqs struct {
	mu   sync.Mutex
	list []int
}

func newSeqs() *seqs { return &seqs{} }

func (s *seqs) add(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.list = append(s.list, n)
}

// deliver is a subscription's deliver func that adds each message's Seq.
func (s *seqs) deliver(p []byte) {
	var m brokertest.Msg
	if json.Unmarshal(p, &m) == nil {
		s.add(m.Seq)
	}
}

func (s *seqs) last() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.list[len(s.list)-1]
}

func (s *seqs) has(n int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range s.list {
		if x == n {
			return true
		}
	}
	return false
}

// missing says what of sent, in its order, s lacks, or which it holds
// twice; "" if none.
func (s *seqs) missing(sent *seqs) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[int]bool{}
	for _, x := range s.list {
		if seen[x] {
			return fmt.Sprintf("message %d arrived twice", x)
		}
		seen[x] = true
	}
	i := 0
	for _, want := range sent.list {
		for i < len(s.list) && s.list[i] != want {
			i++
		}
		if i == len(s.list) {
			return fmt.Sprintf("message %d, whose publish returned nil, did not arrive in its place (got %v)", want, s.list)
		}
	}
	return ""
}
