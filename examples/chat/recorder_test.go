package main

// recorder: a chat member, on a socket of its own, whose goroutine
// records every frame it receives and, given a window, floods its room.

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wsroom/wsroom/internal/wstest"
)

// recorder is a member that records every frame it receives and, given
// a window, publishes "NAME i" as fast as the room echoes them back, with
// window messages in flight.
type recorder struct {
	name        string
	c           *wstest.Client
	quit        chan struct{} // stops the sender
	sent        chan int      // the sender's count, once it stopped
	done        chan struct{} // closed when the reader has returned
	stopReading chan struct{}
	halted      sync.Once
	total       int // sent, once halted

	mu     sync.Mutex
	frames []chatFrame
	echoed int // own messages received back
	err    error
}

// startRecorder joins room as name on the chat at base and, once its own
// joined has arrived, records and, with window > 0, floods.
func startRecorder(t *testing.T, base, room, name string, window int) *recorder {
	t.Helper()
	p := &recorder{name: name, c: wstest.Dial(t, roomURL(base, room, name, "")), quit: make(chan struct{}),
		sent: make(chan int, 1), done: make(chan struct{}), stopReading: make(chan struct{})}
	p.frames = append(p.frames, expect(t, p.c, "joined", name, nil))
	slots := make(chan struct{}, max(window, 1))
	go p.read(slots)
	if window == 0 {
		p.sent <- 0
	} else {
		go p.flood(slots)
	}
	t.Cleanup(func() { p.halt() })
	return p
}

// floodWindow is how many messages a flood has in flight.
const floodWindow = 64

// startFlood is startRecorder with floodWindow.
func startFlood(t *testing.T, base, room, name string) *recorder {
	return startRecorder(t, base, room, name, floodWindow)
}

func (p *recorder) flood(slots chan struct{}) {
	for i := 0; ; i++ {
		select {
		case slots <- struct{}{}:
		case <-p.quit:
			p.sent <- i
			return
		}
		b, _ := json.Marshal(map[string]string{"type": "message", "content": fmt.Sprintf("%s %d", p.name, i)})
		if err := p.c.Conn().WriteString(string(b)); err != nil {
			p.fail(fmt.Errorf("send %d: %w", i, err))
			p.sent <- i
			return
		}
	}
}

func (p *recorder) read(slots chan struct{}) {
	defer close(p.done)
	for {
		ev, ok := p.c.NextWithin(20 * time.Millisecond)
		if !ok {
			select {
			case <-p.stopReading:
				return
			default:
				continue
			}
		}
		if ev.Closed {
			p.fail(fmt.Errorf("closed: %d %q", ev.Code, ev.Reason))
			return
		}
		f, err := parseChat(ev.Data)
		if err != nil {
			p.fail(err)
			return
		}
		p.mu.Lock()
		p.frames = append(p.frames, f)
		own := f.Type == "message" && f.Username == p.name
		if own {
			p.echoed++
		}
		p.mu.Unlock()
		if own {
			<-slots
		}
	}
}

func (p *recorder) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err == nil {
		p.err = err
	}
}

// halt stops the sender and, once every message sent came back (or
// after wstest.Timeout), the reader; it returns how many were sent.
func (p *recorder) halt() int {
	p.halted.Do(func() {
		close(p.quit)
		p.total = <-p.sent
		deadline := time.Now().Add(wstest.Timeout)
		for p.count() < p.total && time.Now().Before(deadline) && p.error() == nil {
			time.Sleep(2 * time.Millisecond)
		}
		close(p.stopReading)
		<-p.done
	})
	return p.total
}

// stop stops flooding once every message sent came back, and returns the
// content of the last one.
func (p *recorder) stop(t *testing.T) string {
	t.Helper()
	n := p.halt()
	if err := p.error(); err != nil {
		t.Fatalf("%s: %v", p.name, err)
	}
	if p.count() != n || n == 0 {
		t.Fatalf("%s sent %d, received %d back", p.name, n, p.count())
	}
	return fmt.Sprintf("%s %d", p.name, n-1)
}

func (p *recorder) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.echoed
}

func (p *recorder) error() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// recorded returns the raw frames the flooder received, by seq.
func (p *recorder) recorded() map[uint64]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[uint64]string{}
	for _, f := range p.frames {
		if f.Seq != 0 {
			out[f.Seq] = f.raw
		}
	}
	return out
}

// heard reports whether the recorder received the message content.
func (p *recorder) heard(content string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, f := range p.frames {
		if f.Type == "message" && f.Content != nil && *f.Content == content {
			return true
		}
	}
	return false
}

// inOrder reports why the recorded events the recorder received are not
// every seq once, in order, in one epoch; nil if they are.
func (p *recorder) inOrder() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var prev chatFrame
	for _, f := range p.frames {
		if f.Seq == 0 {
			continue
		}
		if prev.Seq != 0 && (f.Epoch != prev.Epoch || f.Seq != prev.Seq+1) {
			return fmt.Errorf("%s received %s after seq %d of epoch %s", p.name, f.raw, prev.Seq, prev.Epoch)
		}
		prev = f
	}
	return nil
}
