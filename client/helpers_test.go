package client_test

import (
	"context"
	"iter"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/client"
	"github.com/wsroom/wsroom/wsroomtest"
)

// In is what the tests' clients send.
type In struct {
	Text string `json:"text"`
}

// Out is what the tests' endpoint sends; Seq and Epoch show a recorded
// message's position to the test.
type Out struct {
	Seq   uint64 `json:"seq,omitempty"`
	Epoch string `json:"epoch,omitempty"`
	Type  string `json:"type"`
	N     int    `json:"n,omitempty"`
	Text  string `json:"text,omitempty"`
}

// server is a wsroom endpoint with history on a loopback port: each
// connection joins the room of its path ("/room/{room}"), announced by a
// recorded "joined"; what a member sends is published to the room as
// "echo", except "close CODE", which closes the connection with CODE,
// and "big N", which sends the member alone N bytes.
type server struct {
	URL   string
	rooms *wsroom.Rooms[Out]
	ep    *wsroom.Endpoint[In, Out]
}

func newServer(t testing.TB, history int, opts ...wsroom.Option) *server {
	t.Helper()
	s := &server{rooms: wsroom.NewRooms[Out](wsroom.WithHistory(history, time.Minute))}
	s.ep = wsroom.New(s.handle, opts...)
	mux := http.NewServeMux()
	mux.Handle("GET /room/{room}", s.ep)
	s.URL = wsroomtest.NewServer(t, mux, s.ep).URL
	return s
}

func (s *server) handle(c *wsroom.Conn[Out], msgs iter.Seq2[In, error]) error {
	room := s.rooms.Room(c.Request().PathValue("room"))
	leave, err := room.Join(c, Out{Type: "joined"})
	if err != nil {
		return err
	}
	defer leave()
	for msg, err := range msgs {
		if err != nil {
			return err
		}
		verb, arg, _ := strings.Cut(msg.Text, " ")
		n, _ := strconv.Atoi(arg)
		switch verb {
		case "close":
			return &wsroom.CloseError{Code: wsroom.StatusCode(n), Reason: "asked to"}
		case "big":
			err = c.Send(Out{Type: "big", Text: strings.Repeat("x", n)})
		default:
			err = room.Publish(Out{Type: "echo", Text: msg.Text})
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// url is the server's ws:// URL of a room.
func (s *server) url(room string) string {
	return "ws" + strings.TrimPrefix(s.URL, "http") + "/room/" + room
}

// statuses records what a Conn reports, for the range's goroutine and
// others to read.
type statuses struct {
	mu   sync.Mutex
	list []client.Status
	kick chan struct{} // a token on each new status
}

func newStatuses() *statuses { return &statuses{kick: make(chan struct{}, 1)} }

func (s *statuses) add(st client.Status) {
	s.mu.Lock()
	s.list = append(s.list, st)
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// count returns how many statuses of kind were reported.
func (s *statuses) count(kind client.StatusKind) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, st := range s.list {
		if st.Kind == kind {
			n++
		}
	}
	return n
}

// all returns the statuses reported so far.
func (s *statuses) all() []client.Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]client.Status(nil), s.list...)
}

// deadline is the context the tests' Conns live in: a test that waits
// for a message that never comes ends with its error, not a hang.
func deadline(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// fast are the options of a client that reconnects at once: the tests
// cut connections many times.
func fast(more ...client.Option) []client.Option {
	return append([]client.Option{client.WithBackoff(time.Millisecond, 20*time.Millisecond)}, more...)
}

// dial dials url, failing the test if it cannot, and closes the Conn at
// cleanup.
func dial(t testing.TB, ctx context.Context, url string, opts ...client.Option) *client.Conn[In, Out] {
	t.Helper()
	c, err := client.Dial[In, Out](ctx, url, opts...)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}
