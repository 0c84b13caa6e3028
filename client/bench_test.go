package client_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lxzan/gws"
	"github.com/wsroom/wsroom/client"
)

// BenchmarkReceive measures how many room messages per second one client
// takes in over loopback, decoded into Out: this package's Conn (its
// position check, its queue, the range) beside a bare gws client that
// decodes in its callback. Both are connected to the same server, each in
// a room of its own, and take turns, a chunk of messages each, so that
// the machine's noise falls on both alike; the ratio is reported beside
// the rates. At most window messages are in flight, so that the server
// never sees a slow consumer.
func BenchmarkReceive(b *testing.B) {
	b.Run("ephemeral", func(b *testing.B) { benchReceive(b, false) })
	b.Run("recorded", func(b *testing.B) { benchReceive(b, true) })
}

const window, chunk = 512, 1000

// A receiver connects to url and calls got for each message decoded, from
// one goroutine; it returns a function that disconnects.
type receiver func(b *testing.B, url string, got func(Out)) (stop func())

// side is one receiver under test, in its room.
type side struct {
	publish func(Out) error
	credit  chan struct{} // a token per message in flight
	got     chan struct{} // a token per message received
	took    time.Duration
}

func benchReceive(b *testing.B, recorded bool) {
	srv := newServer(b, 1000)
	sides := make([]*side, 2)
	for i, recv := range []receiver{receiveWithClient, receiveWithGws} {
		name := fmt.Sprint("bench", i)
		room := srv.rooms.Room(name)
		s := &side{publish: room.PublishEphemeral, credit: make(chan struct{}, window), got: make(chan struct{}, chunk)}
		if recorded {
			s.publish = room.Publish
		}
		joined := make(chan struct{})
		stop := recv(b, srv.url(name), func(m Out) {
			switch m.Type {
			case "joined":
				close(joined)
			case "msg":
				<-s.credit
				s.got <- struct{}{}
			}
		})
		defer stop()
		<-joined
		sides[i] = s
	}
	msg := Out{Type: "msg", Text: strings.Repeat("x", 64)}
	b.ResetTimer()
	for done := 0; done < b.N; done += chunk {
		n := min(chunk, b.N-done)
		for _, s := range sides {
			start := time.Now()
			for range n {
				s.credit <- struct{}{}
				if err := s.publish(msg); err != nil {
					b.Fatal(err)
				}
			}
			for range n {
				<-s.got
			}
			s.took += time.Since(start)
		}
	}
	client, bare := float64(b.N)/sides[0].took.Seconds(), float64(b.N)/sides[1].took.Seconds()
	b.ReportMetric(client, "client-msgs/s")
	b.ReportMetric(bare, "gws-msgs/s")
	b.ReportMetric(client/bare, "client/gws")
}

func receiveWithClient(b *testing.B, url string, got func(Out)) func() {
	c, err := client.Dial[In, Out](context.Background(), url)
	if err != nil {
		b.Fatal(err)
	}
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		for m, err := range c.Messages() {
			if err != nil {
				b.Error(err)
				return
			}
			got(m)
		}
	}()
	return func() {
		_ = c.Close()
		<-ended
	}
}

// gwsReceiver decodes each message in gws's callback.
type gwsReceiver struct {
	gws.BuiltinEventHandler
	got func(Out)
}

func (r *gwsReceiver) OnMessage(_ *gws.Conn, m *gws.Message) {
	var o Out
	_ = json.Unmarshal(m.Bytes(), &o)
	_ = m.Close()
	r.got(o)
}

func receiveWithGws(b *testing.B, url string, got func(Out)) func() {
	ws, _, err := gws.NewClient(&gwsReceiver{got: got}, &gws.ClientOption{Addr: url, ReadMaxPayloadSize: 1 << 20, CheckUtf8Enabled: true})
	if err != nil {
		b.Fatal(err)
	}
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		ws.ReadLoop()
	}()
	return func() {
		_ = ws.WriteClose(1000, nil)
		<-ended
	}
}
