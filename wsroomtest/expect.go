package wsroomtest

import (
	"encoding/json"
	"fmt"
	"reflect"
	"time"

	"github.com/wsroom/wsroom"
)

// Receive returns the next message, decoded into Recv. It fails the test
// if none arrives within the client's timeout, if the connection ends
// first, or if the frame does not decode, saying which.
func (c *Conn[Send, Recv]) Receive() Recv {
	c.t.Helper()
	v, _ := c.receive("a message")
	return v
}

// ReceiveText returns the next message as the text the server sent, as
// Receive would take it.
func (c *Conn[Send, Recv]) ReceiveText() string {
	c.t.Helper()
	ev, ok := c.next("a message")
	if !ok {
		return ""
	}
	return string(ev.data)
}

// Expect takes the next message and fails the test unless it equals want
// (reflect.DeepEqual of the decoded values), showing the frame that came
// instead.
func (c *Conn[Send, Recv]) Expect(want Recv) {
	c.t.Helper()
	wantJSON, _ := json.Marshal(want)
	got, raw := c.receive(string(wantJSON))
	if raw != "" && !reflect.DeepEqual(got, want) {
		c.t.Fatalf("wsroomtest: %s: got %s, want %s", c.path, raw, wantJSON)
	}
}

// ExpectMatch takes the next message and fails the test unless match
// holds for it, showing the frame that came instead of what desc
// describes. It returns the message.
func (c *Conn[Send, Recv]) ExpectMatch(desc string, match func(Recv) bool) Recv {
	c.t.Helper()
	got, raw := c.receive(desc)
	if raw != "" && !match(got) {
		c.t.Fatalf("wsroomtest: %s: got %s, want %s", c.path, raw, desc)
	}
	return got
}

// ExpectNothing fails the test if a message arrives, or the connection
// ends, within d: it waits the whole of d.
func (c *Conn[Send, Recv]) ExpectNothing(d time.Duration) {
	c.t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case ev := <-c.events:
		c.took(ev)
		c.t.Fatalf("wsroomtest: %s: got %s, want nothing for %v", c.path, ev, d)
	case <-timer.C:
	}
}

// ExpectClosed waits for the server to close the connection and fails the
// test unless it closed with code; it returns the close reason. Messages
// that arrive before the close are passed over, and shown if the test
// fails.
func (c *Conn[Send, Recv]) ExpectClosed(code wsroom.StatusCode) (reason string) {
	c.t.Helper()
	timer := time.NewTimer(c.timeout)
	defer timer.Stop()
	var passed []string
	for {
		select {
		case ev := <-c.events:
			c.took(ev)
			if !ev.closed {
				passed = append(passed, ev.String())
				continue
			}
			if ev.code != uint16(code) {
				c.t.Fatalf("wsroomtest: %s: got %s%s, want close %d", c.path, ev, after(passed), code)
			}
			return ev.reason
		case <-timer.C:
			c.t.Fatalf("wsroomtest: %s: not closed within %v%s, want close %d", c.path, c.timeout, after(passed), code)
			return ""
		}
	}
}

// receive takes the next message and decodes it; raw is "" when the test
// has failed.
func (c *Conn[Send, Recv]) receive(want string) (v Recv, raw string) {
	c.t.Helper()
	ev, ok := c.next(want)
	if !ok {
		return v, ""
	}
	if err := json.Unmarshal(ev.data, &v); err != nil {
		c.t.Fatalf("wsroomtest: %s: got %s, which does not decode into %T (%v), want %s", c.path, ev, v, err, want)
		return v, ""
	}
	return v, string(ev.data)
}

// next takes the next frame, which must be a text message; ok is false
// when the test has failed.
func (c *Conn[Send, Recv]) next(want string) (ev event, ok bool) {
	c.t.Helper()
	timer := time.NewTimer(c.timeout)
	defer timer.Stop()
	select {
	case ev = <-c.events:
	case <-timer.C:
		c.t.Fatalf("wsroomtest: %s: nothing arrived within %v%s, want %s", c.path, c.timeout, c.lastTaken(), want)
		return ev, false
	}
	prev := c.lastTaken()
	c.took(ev)
	if ev.closed || ev.binary {
		c.t.Fatalf("wsroomtest: %s: got %s%s, want %s", c.path, ev, prev, want)
		return ev, false
	}
	return ev, true
}

func (c *Conn[Send, Recv]) took(ev event) { c.last = &ev }

// lastTaken quotes the last frame an assertion took, as context.
func (c *Conn[Send, Recv]) lastTaken() string {
	if c.last == nil {
		return " (nothing received before)"
	}
	return fmt.Sprintf(" (the frame before: %s)", c.last)
}

// after lists the messages passed over before an event.
func after(passed []string) string {
	if len(passed) == 0 {
		return ""
	}
	if len(passed) == 1 {
		return fmt.Sprintf(" after 1 message: %v", passed)
	}
	return fmt.Sprintf(" after %d messages: %v", len(passed), passed)
}
