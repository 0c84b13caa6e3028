package wsroom_test

import (
	"iter"
	"strings"
	"testing"
	"time"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/wstest"
)

// The send side (write.go, writers.go, queue.go): the bounded queue and
// what happens when it fills, and the accounting of what is written.

// bulkSender is the sender number of messages a test publishes itself.
const bulkSender = 1 << 62

// TestHostileSlowConsumerIsClosedAndMemoryStaysBounded: a member that stops
// reading while the room is busy is closed with 1008 "slow consumer" once
// its queue is full, and it alone: exactly one slow-consumer close. The
// server's heap never holds more than a bounded backlog, and the member
// that reads (the arena's witness) gets every message, in order, without
// a stall.
func TestHostileSlowConsumerIsClosedAndMemoryStaysBounded(t *testing.T) {
	skipIfShort(t, "arena")
	wstest.CheckGoroutines(t)
	a := newArena(t, arenaOptions{}, chatToOut)
	stalled, _, err := wstest.RawDial(a.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	lobby := a.rooms.Room("lobby")
	wstest.WaitFor(t, "the stalled member in the lobby", func() bool { return lobby.Len() == 3 })

	heap := watchHeap(t)
	payload := strings.Repeat("x", 16<<10)
	// The publisher keeps at most a window of messages ahead of the
	// witness, as a paced real publisher would, so that only the stalled
	// member falls behind.
	const window, limit = 16, 4000 // at most 62.5 MiB published: far more than socket buffers and queue hold
	sent := 0
	for sent < limit && a.stats().SlowConsumerCloses == 0 {
		// Pace on the witness, as a real publisher paced by its readers.
		deadline := time.Now().Add(wstest.Timeout)
		for a.published.Load()-a.w.received.Load() > window {
			if time.Now().After(deadline) {
				t.Fatalf("the witness stopped receiving after %d messages", a.w.received.Load())
			}
			time.Sleep(time.Millisecond)
		}
		sent++
		_ = lobby.Publish(chatOut{Type: "bulk", From: bulkSender, Seq: sent, Content: payload})
	}
	growth := heap.growth()
	if got := a.stats().SlowConsumerCloses; got != 1 {
		t.Fatalf("%d slow-consumer closes after %d messages of 16 KiB, want 1", got, sent)
	}
	if growth > 24<<20 {
		t.Errorf("heap grew by %d MiB while %d MiB were published: the backlog is not bounded", growth>>20, sent>>6)
	}
	e := stalled.ReadToEnd(wstest.Timeout, 1<<20)
	if e.Err != nil || e.Code != 1008 || e.Reason != "slow consumer" {
		t.Fatalf("stalled member: close %d %q, %v; want 1008 slow consumer", e.Code, e.Reason, e.Err)
	}
	a.finish()
	t.Logf("hostile: 1 stalled member closed 1008 after %d messages (%d MiB) were published; server heap peak +%d MiB",
		sent, sent>>6, growth>>20)
}

func TestOverflowDropKeepsConnectionAndCountsDrops(t *testing.T) {
	wstest.CheckGoroutines(t)
	rooms := wsroom.NewRooms[chatOut]()
	ep, srv := serve(t, member(rooms), wsroom.WithOverflow(wsroom.OverflowDrop), wsroom.WithSendQueue(8, 64<<10))
	slow := wstest.Dial(t, srv.URL+"/ws/drop", wstest.Options{Paused: true})
	wstest.WaitFor(t, "a member", func() bool { return rooms.Room("drop").Len() == 1 })
	room := rooms.Room("drop")
	payload := strings.Repeat("y", 16<<10)
	for i := 0; i < 4000 && ep.Stats().Dropped == 0; i++ {
		_ = room.Publish(chatOut{Type: "flood", Content: payload})
	}
	if ep.Stats().Dropped == 0 {
		t.Fatal("no message was dropped for a client that stopped reading")
	}
	slow.Resume()
	// The connection is still open and served: markers get through once
	// the client has drained its backlog.
	for {
		_ = room.Publish(chatOut{Type: "marker"})
		var out chatOut
		slow.JSON(t, &out)
		if out.Type == "marker" {
			break
		}
	}
	if s := ep.Stats(); s.SlowConsumerCloses != 0 || s.Connections != 1 {
		t.Fatalf("stats %+v: want no close under OverflowDrop", s)
	}
}

func TestSendReturnsErrSendQueueFullAtTheBound(t *testing.T) {
	wstest.CheckGoroutines(t)
	results := make(chan error, 1)
	_, srv := serve(t, func(c *wsroom.Conn[chatOut], msgs iter.Seq2[chatIn, error]) error {
		payload := strings.Repeat("z", 32<<10)
		for range 10000 {
			if err := c.Send(chatOut{Type: "bulk", Content: payload}); err != nil {
				results <- err
				return err
			}
		}
		results <- nil
		return nil
	}, wsroom.WithSendQueue(1024, 256<<10))
	c := wstest.Dial(t, srv.URL+"/ws/lobby", wstest.Options{Paused: true})
	if err := <-results; err != wsroom.ErrSendQueueFull {
		t.Fatalf("Send to a stalled client = %v, want ErrSendQueueFull", err)
	}
	c.Resume()
	if ev := c.Closed(t); ev.Code != 1008 {
		t.Fatalf("close %d, want 1008", ev.Code)
	}
}

// TestStatsCountEveryByteWrittenWhenABatchIsSplit: a batch larger than the
// socket takes at once is written partly by a pool worker and finished by
// the connection's flusher; BytesOut and MessagesOut count both parts,
// exactly what the client receives.
func TestStatsCountEveryByteWrittenWhenABatchIsSplit(t *testing.T) {
	wstest.CheckGoroutines(t)
	const n, size = 400, 32 << 10 // 12.5 MiB: more than the socket buffers hold
	sent := make(chan struct{})
	ep, srv := serve(t, func(c *wsroom.Conn[chatOut], msgs iter.Seq2[chatIn, error]) error {
		content := strings.Repeat("x", size)
		for i := range n {
			if err := c.Send(chatOut{Type: "bulk", Seq: i, Content: content}); err != nil {
				return err
			}
		}
		close(sent)
		for _, err := range msgs {
			if err != nil {
				return err
			}
		}
		return nil
	}, wsroom.WithSendQueue(n, 2*n*size), wsroom.WithHeartbeat(0, 0))
	r, _, err := wstest.RawDial(srv.URL+"/ws/lobby", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// The client reads only once everything is queued: the writer fills
	// the socket meanwhile, and the writev that finds it nearly full is
	// cut short.
	select {
	case <-sent:
	case <-time.After(wstest.Timeout):
		t.Fatal("the handler did not queue its messages")
	}
	received := 0
	for range n {
		f, err := r.ReadFrame(2 * size)
		if err != nil {
			t.Fatal(err)
		}
		received += frameSize(len(f.Payload))
	}
	wstest.WaitFor(t, "every byte received to be counted", func() bool {
		s := ep.Stats()
		return s.MessagesOut == n && s.BytesOut == int64(received)
	})
	closeRaw(t, r)
}

// member subscribes every connection to the room of its path.
func member(rooms *wsroom.Rooms[chatOut]) wsroom.Handler[chatIn, chatOut] {
	return func(c *wsroom.Conn[chatOut], msgs iter.Seq2[chatIn, error]) error {
		leave, err := rooms.Room(c.Request().PathValue("room")).Subscribe(c)
		if err != nil {
			return err
		}
		defer leave()
		for _, err := range msgs {
			if err != nil {
				return err
			}
		}
		return nil
	}
}

// frameSize is the size on the wire of a server frame of n payload bytes.
func frameSize(n int) int {
	switch {
	case n < 126:
		return 2 + n
	case n <= 0xFFFF:
		return 4 + n
	default:
		return 10 + n
	}
}
