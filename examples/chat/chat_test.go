package main

// Tests of the chat contract (see the package comment in main.go), over real
// sockets: a wsroomtest server mounting the chat's routes, its typed clients, and,
// where a test writes raw bytes or runs the binary, wstest's gws client.
// Every wait has a deadline; nothing sleeps to synchronise.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/redistest"
	"github.com/wsroom/wsroom/internal/wstest"
	"github.com/wsroom/wsroom/wsroomtest"
)

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

// chatServer is the chat application served in-process.
type chatServer struct {
	rooms *wsroom.Rooms[ChatMessage]
	ep    *wsroom.Endpoint[ClientMessage, ChatMessage]
	srv   *wsroomtest.Server
}

// member is a typed chat client: it sends what a browser sends, and reads
// frames raw, so that parseChat checks every key.
type member = wsroomtest.Conn[map[string]string, json.RawMessage]

// chatClient is either kind of client the helpers read from.
type chatClient interface{ *wstest.Client | *member }

// startChat serves routes(ep) with ep := wsroom.New(chat(rooms), opts...) on
// a real socket. At cleanup the endpoint is shut down (with a deadline) and
// the server closed.
func startChat(t *testing.T, opts ...wsroom.Option) *chatServer {
	t.Helper()
	rooms := newRooms(nil)
	ep := wsroom.New(chat(rooms), opts...)
	doc, err := contract(ep, false)
	if err != nil {
		t.Fatal(err)
	}
	srv := wsroomtest.NewServer(t, routes(ep, presenceHandler(rooms, nil), doc, metrics(ep, rooms)), ep)
	return &chatServer{rooms: rooms, ep: ep, srv: srv}
}

// roomURL is the WebSocket URL of room for username ("" leaves the
// parameter out); extra is appended to the query as is.
func roomURL(base, room, username, extra string) string {
	return base + roomPath(room, username, extra)
}

// roomPath is roomURL's path and query.
func roomPath(room, username, extra string) string {
	u := "/chat/room/" + url.PathEscape(room)
	q := url.Values{}
	if username != "" {
		q.Set("username", username)
	}
	query := q.Encode()
	if extra != "" {
		if query != "" {
			query += "&"
		}
		query += extra
	}
	if query != "" {
		u += "?" + query
	}
	return u
}

// join connects username to room and checks that the first frame it
// receives is its own "joined".
func (s *chatServer) join(t *testing.T, room, username string, opts ...wsroomtest.DialOption) *member {
	t.Helper()
	c := wsroomtest.Dial[map[string]string, json.RawMessage](t, s.srv, roomPath(room, username, ""), opts...)
	expect(t, c, "joined", username, nil)
	return c
}

// joinRaw is join with wstest's client, for a test that writes raw bytes.
func (s *chatServer) joinRaw(t *testing.T, room, username string) *wstest.Client {
	t.Helper()
	c := wstest.Dial(t, roomURL(s.srv.URL, room, username, ""))
	expect(t, c, "joined", username, nil)
	return c
}

// roomListed reports whether a room of that name is in the registry.
func roomListed[M any](rooms *wsroom.Rooms[M], name string) bool {
	for n := range rooms.All() {
		if n == name {
			return true
		}
	}
	return false
}

func str(s string) *string { return &s }

// chatFrame is one server-to-client chat message, with its raw keys.
type chatFrame struct {
	keys      []string
	Seq       uint64 // 0 when the "seq" key is absent (a typing signal)
	Epoch     string
	Type      string
	Username  string
	Content   *string // nil when the "content" key is absent
	Timestamp string
	Users     []PresentUser // of a presence frame
	raw       string
}

// timestampRE is RFC 3339 with a fractional second.
var timestampRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d+(Z|[+-]\d{2}:\d{2})$`)

// parseChat decodes and checks one chat frame against the contract: only
// the keys seq, epoch, type, username, content and timestamp; on recorded
// events (message, joined, left) seq (an integer ≥ 1) and epoch (a
// non-empty string) both, or, in a chat without history, neither (tests
// of a chat with history check Seq); on a typing signal neither; type in
// the enum;
// username a string; content, when present, a string; timestamp RFC 3339
// with sub-seconds and close to now, except on "left", which has none. A
// presence frame is checked by parsePresence.
func parseChat(data []byte) (chatFrame, error) {
	f := chatFrame{raw: string(data)}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return f, fmt.Errorf("frame %s is not a JSON object: %v", data, err)
	}
	if string(m["type"]) == `"presence"` {
		return parsePresence(data, m)
	}
	for k := range m {
		f.keys = append(f.keys, k)
		switch k {
		case "seq", "epoch", "type", "username", "content", "timestamp":
		default:
			return f, fmt.Errorf("frame %s has unexpected key %q", data, k)
		}
	}
	slices.Sort(f.keys)
	for _, k := range []string{"type", "username"} {
		if _, ok := m[k]; !ok {
			return f, fmt.Errorf("frame %s lacks key %q", data, k)
		}
	}
	if err := json.Unmarshal(m["type"], &f.Type); err != nil {
		return f, fmt.Errorf("frame %s: type: %v", data, err)
	}
	if err := json.Unmarshal(m["username"], &f.Username); err != nil {
		return f, fmt.Errorf("frame %s: username: %v", data, err)
	}
	ts, hasTS := m["timestamp"]
	switch {
	case f.Type == "left" && hasTS:
		return f, fmt.Errorf("frame %s: a left carries a timestamp", data)
	case f.Type == "left":
		if err := parsePosition(m, &f); err != nil {
			return f, fmt.Errorf("frame %s: %v", data, err)
		}
		return f, nil
	case !hasTS:
		return f, fmt.Errorf("frame %s lacks key %q", data, "timestamp")
	}
	if err := json.Unmarshal(ts, &f.Timestamp); err != nil {
		return f, fmt.Errorf("frame %s: timestamp: %v", data, err)
	}
	if raw, ok := m["content"]; ok {
		if string(raw) == "null" {
			return f, fmt.Errorf("frame %s: content is null", data)
		}
		f.Content = new(string)
		if err := json.Unmarshal(raw, f.Content); err != nil {
			return f, fmt.Errorf("frame %s: content: %v", data, err)
		}
	}
	if err := parsePosition(m, &f); err != nil {
		return f, fmt.Errorf("frame %s: %v", data, err)
	}
	if !timestampRE.MatchString(f.Timestamp) {
		return f, fmt.Errorf("frame %s: timestamp %q is not RFC 3339 with sub-seconds", data, f.Timestamp)
	}
	at, err := time.Parse(time.RFC3339Nano, f.Timestamp)
	if err != nil {
		return f, fmt.Errorf("frame %s: timestamp: %v", data, err)
	}
	if d := time.Since(at); d < -time.Minute || d > time.Minute {
		return f, fmt.Errorf("frame %s: timestamp %v is %v away from now", data, at, d)
	}
	return f, nil
}

// seqRE is a seq as the contract writes it: a JSON integer ≥ 1.
var seqRE = regexp.MustCompile(`^[1-9][0-9]*$`)

// parsePosition checks f's type and reads its position: a recorded event
// (message, joined, left) has "seq", an integer ≥ 1, and "epoch", a
// non-empty string, or, in a chat without history, neither; a typing
// signal has neither.
func parsePosition(m map[string]json.RawMessage, f *chatFrame) error {
	seq, hasSeq := m["seq"]
	_, hasEpoch := m["epoch"]
	switch f.Type {
	case "message", "joined", "left":
		if !hasSeq && !hasEpoch {
			return nil // a chat without history
		}
	case "typing":
		if hasSeq || hasEpoch {
			return errors.New("a typing signal carries a position")
		}
		return nil
	default:
		return fmt.Errorf("type %q outside the enum", f.Type)
	}
	if !hasSeq {
		return errors.New(`a recorded event lacks "seq"`)
	}
	if err := json.Unmarshal(seq, &f.Seq); err != nil || f.Seq == 0 || !seqRE.Match(seq) {
		return fmt.Errorf("seq %s is not an integer ≥ 1", seq)
	}
	epoch, ok := m["epoch"]
	if !ok {
		return errors.New(`a recorded event lacks "epoch"`)
	}
	if err := json.Unmarshal(epoch, &f.Epoch); err != nil || f.Epoch == "" {
		return fmt.Errorf("epoch %s is not a non-empty string", epoch)
	}
	return nil
}

// message reads the next data message of c.
func message[C chatClient](t *testing.T, c C) []byte {
	t.Helper()
	switch c := any(c).(type) {
	case *wstest.Client:
		return c.Message(t)
	case *member:
		return c.Receive()
	}
	panic("unreachable")
}

// next reads the next chat frame of c, checking it against the contract.
// It passes over presence frames, once checked: tests of presence read
// them with frame.
func next[C chatClient](t *testing.T, c C) chatFrame {
	t.Helper()
	for {
		if f := frame(t, c); f.Type != "presence" {
			return f
		}
	}
}

// frame reads the next chat frame of c, presence frames included,
// checking it against the contract.
func frame[C chatClient](t *testing.T, c C) chatFrame {
	t.Helper()
	f, err := parseChat(message(t, c))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// expect reads the next chat frame of c and checks its type, username and
// content (nil: the "content" key must be absent).
func expect[C chatClient](t *testing.T, c C, typ, username string, content *string) chatFrame {
	t.Helper()
	f := next(t, c)
	if f.Type != typ || f.Username != username {
		t.Fatalf("got %s, want type %q from %q", f.raw, typ, username)
	}
	switch {
	case content == nil && f.Content != nil:
		t.Fatalf("got %s, want no \"content\" key", f.raw)
	case content != nil && f.Content == nil:
		t.Fatalf("got %s, want \"content\":%q", f.raw, *content)
	case content != nil && *f.Content != *content:
		t.Fatalf("got %s, want \"content\":%q", f.raw, *content)
	}
	return f
}

// expectError reads the next frame of c and checks it is exactly the default
// rejection {"type":"error","error":"<reason>"}; it returns the reason.
func expectError[C chatClient](t *testing.T, c C) string {
	t.Helper()
	data := message(t, c)
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("frame %s: %v", data, err)
	}
	reason, ok := m["error"].(string)
	if len(m) != 2 || m["type"] != "error" || !ok || reason == "" {
		t.Fatalf("got %s, want {\"type\":\"error\",\"error\":\"<reason>\"}", data)
	}
	return reason
}

// sendMessage sends a valid chat message.
func sendMessage[C chatClient](t *testing.T, c C, content string) {
	t.Helper()
	m := map[string]string{"type": "message", "content": content}
	switch c := any(c).(type) {
	case *wstest.Client:
		c.Send(t, m)
	case *member:
		c.Send(m)
	}
}

// ---------------------------------------------------------------------------
// Upgrade and identity
// ---------------------------------------------------------------------------

func TestUpgradeAtChatRoomPathAnnouncesUsernameFromQuery(t *testing.T) {
	wstest.CheckGoroutines(t)
	s := startChat(t)
	ann := s.join(t, "lobby", "Ann Lee") // space: the query is decoded
	bob := s.join(t, "lobby", "bob")
	expect(t, ann, "joined", "bob", nil)
	sendMessage(t, bob, "hi")
	expect(t, ann, "message", "bob", str("hi"))
	expect(t, bob, "message", "bob", str("hi"))
	sendMessage(t, ann, "hello")
	expect(t, bob, "message", "Ann Lee", str("hello"))
}

func TestMissingOrEmptyUsernameIsAnonymous(t *testing.T) {
	wstest.CheckGoroutines(t)
	s := startChat(t)
	for _, tc := range []struct{ name, url string }{
		{"no parameter", roomPath("anon", "", "")},
		{"empty parameter", "/chat/room/anon?username="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			watcher := s.join(t, "anon", "watcher")
			c := wsroomtest.Dial[map[string]string, json.RawMessage](t, s.srv, tc.url)
			expect(t, c, "joined", "Anonymous", nil)
			expect(t, watcher, "joined", "Anonymous", nil)
			sendMessage(t, c, "who am I")
			expect(t, c, "message", "Anonymous", str("who am I"))
			expect(t, watcher, "message", "Anonymous", str("who am I"))
			c.Close()
			expect(t, watcher, "left", "Anonymous", nil)
			watcher.Close()
			wstest.WaitFor(t, "room anon to be removed", func() bool { return s.rooms.Len() == 0 })
		})
	}
}

// ---------------------------------------------------------------------------
// Message format
// ---------------------------------------------------------------------------

func TestOutboundFramesHaveExactlyTheContractKeysAndRFC3339SubSecondTimestamps(t *testing.T) {
	wstest.CheckGoroutines(t)
	s := startChat(t)
	ann := wsroomtest.Dial[map[string]string, json.RawMessage](t, s.srv, roomPath("fmt", "ann", ""))
	f := next(t, ann)
	if want := []string{"epoch", "seq", "timestamp", "type", "username"}; !slices.Equal(f.keys, want) {
		t.Fatalf("joined frame %s has keys %v, want %v", f.raw, f.keys, want)
	}
	sendMessage(t, ann, "x")
	f = next(t, ann)
	if want := []string{"content", "epoch", "seq", "timestamp", "type", "username"}; !slices.Equal(f.keys, want) {
		t.Fatalf("message frame %s has keys %v, want %v", f.raw, f.keys, want)
	}
	ann.SendText(`{"type":"typing"}`)
	if want := []string{"timestamp", "type", "username"}; !slices.Equal(next(t, ann).keys, want) {
		t.Fatalf("typing frame has keys other than %v", want)
	}
	// Timestamps are taken when the message is made: not before the frame
	// the client sent first.
	first, _ := time.Parse(time.RFC3339Nano, f.Timestamp)
	sendMessage(t, ann, "y")
	second, _ := time.Parse(time.RFC3339Nano, expect(t, ann, "message", "ann", str("y")).Timestamp)
	if second.Before(first) {
		t.Fatalf("timestamps go backwards: %v then %v", first, second)
	}
}

func TestContentIsLeftOutWhenClientSentNoneAndKeptWhenEmpty(t *testing.T) {
	wstest.CheckGoroutines(t)
	s := startChat(t)
	ann := s.join(t, "c", "ann")
	bob := s.join(t, "c", "bob")
	expect(t, ann, "joined", "bob", nil)

	ann.SendText(`{"type":"typing"}`)
	for _, c := range []*member{ann, bob} {
		f := expect(t, c, "typing", "ann", nil)
		if strings.Contains(f.raw, `"content"`) {
			t.Fatalf("typing without content: raw frame %s has a content key", f.raw)
		}
	}

	ann.SendText(`{"type":"message"}`)
	for _, c := range []*member{ann, bob} {
		f := expect(t, c, "message", "ann", nil)
		if strings.Contains(f.raw, `"content"`) {
			t.Fatalf("message without content: raw frame %s has a content key", f.raw)
		}
	}

	ann.SendText(`{"type":"message","content":""}`)
	for _, c := range []*member{ann, bob} {
		f := expect(t, c, "message", "ann", str(""))
		if !strings.Contains(f.raw, `"content":""`) {
			t.Fatalf("explicitly empty content: raw frame %s lacks \"content\":\"\"", f.raw)
		}
	}

	ann.SendText(`{"type":"typing","content":""}`)
	for _, c := range []*member{ann, bob} {
		expect(t, c, "typing", "ann", str(""))
	}
}

// ---------------------------------------------------------------------------
// Room membership
// ---------------------------------------------------------------------------

func TestJoinerReceivesOwnJoinedFirstAndMembersAreToldOfIt(t *testing.T) {
	wstest.CheckGoroutines(t)
	s := startChat(t)
	ann := s.join(t, "r", "ann")
	bob := s.join(t, "r", "bob")
	expect(t, ann, "joined", "bob", nil)
	s.join(t, "r", "cat")
	expect(t, ann, "joined", "cat", nil)
	expect(t, bob, "joined", "cat", nil)
	if n := s.rooms.Room("r").Len(); n != 3 {
		t.Fatalf("room r has %d subscribers, want 3", n)
	}
}

// TestJoinerReceivesOwnJoinedFirstWhileRoomIsFlooded: a member publishes as
// fast as flow control allows while others join; every joiner's first frame
// is its own joined, and after it the joiner receives a gap-free run of the
// flooder's messages.
func TestJoinerReceivesOwnJoinedFirstWhileRoomIsFlooded(t *testing.T) {
	wstest.CheckGoroutines(t)
	s := startChat(t, wsroom.WithRateLimit(0, 0)) // the flooder floods on purpose
	const (
		joiners  = 20
		window   = 64    // flood messages in flight
		maxFlood = 20000 // below the joiners' client buffers
	)
	flooder := s.join(t, "flood", "flooder")

	// The joiners dial one after another from a goroutine of their own;
	// their frames are checked afterwards, in the order they were received.
	joined := make(chan *wstest.Client, joiners)
	dialErr := make(chan error, 1)
	dialsDone := make(chan struct{})
	var mu sync.Mutex
	var clients []*wstest.Client
	t.Cleanup(func() {
		<-dialsDone
		mu.Lock()
		defer mu.Unlock()
		for _, c := range clients {
			c.Close()
		}
	})
	go func() {
		defer close(dialsDone)
		for i := range joiners {
			c, status, err := wstest.TryDial(roomURL(s.srv.URL, "flood", fmt.Sprintf("j%02d", i), ""),
				wstest.Options{Buffer: 1 << 15})
			if err != nil {
				dialErr <- fmt.Errorf("dial j%02d: status %d: %w", i, status, err)
				return
			}
			mu.Lock()
			clients = append(clients, c)
			mu.Unlock()
			joined <- c
		}
	}()

	// Flood until every joiner has been announced to the flooder, so every
	// join happened while the flood was running.
	sent, echoed, announced := 0, 0, 0
	for announced < joiners {
		select {
		case err := <-dialErr:
			t.Fatal(err)
		default:
		}
		if sent-echoed < window {
			if sent == maxFlood {
				t.Fatalf("only %d of %d joiners announced after %d flood messages", announced, joiners, sent)
			}
			sendMessage(t, flooder, fmt.Sprint(sent))
			sent++
			continue
		}
		switch f := next(t, flooder); {
		case f.Type == "message" && f.Username == "flooder":
			if f.Content == nil || *f.Content != fmt.Sprint(echoed) {
				t.Fatalf("flooder echo %s, want content %d", f.raw, echoed)
			}
			echoed++
		case f.Type == "joined":
			announced++
		default:
			t.Fatalf("flooder got unexpected %s", f.raw)
		}
	}
	// A few more, so each joiner (the last included) sees the flood after
	// its joined.
	for range window {
		sendMessage(t, flooder, fmt.Sprint(sent))
		sent++
	}
	for ; echoed < sent; echoed++ {
		expect(t, flooder, "message", "flooder", str(fmt.Sprint(echoed)))
	}
	select {
	case <-dialsDone:
	case <-time.After(wstest.Timeout):
		t.Fatal("joiners not dialled in time")
	}
	close(joined)
	t.Logf("%d flood messages while %d members joined", sent, joiners)

	i := 0
	for c := range joined {
		me := fmt.Sprintf("j%02d", i)
		expect(t, c, "joined", me, nil) // the very first frame
		// Then, with nothing of the flood in between, who is here, me among them.
		if f := frame(t, c); f.Type != "presence" || !slices.ContainsFunc(f.Users, func(u PresentUser) bool { return u.Username == me }) {
			t.Fatalf("%s's frame after its joined is %s, not a presence listing it", me, f.raw)
		}
		// Then: joined of other joiners, and a gap-free suffix of the flood.
		first, got := -1, 0
		for first < 0 || first+got < sent {
			f := next(t, c)
			switch {
			case f.Type == "joined" && f.Username != me:
				// Another joiner: its dial returned before or after ours,
				// but its handler may join the room in either order.
			case f.Type == "message" && f.Username == "flooder":
				var n int
				if _, err := fmt.Sscan(*f.Content, &n); err != nil {
					t.Fatalf("%s got %s: %v", me, f.raw, err)
				}
				if first < 0 {
					first = n
				}
				if n != first+got {
					t.Fatalf("%s got flood message %d, want %d (gap or reorder)", me, n, first+got)
				}
				got++
			default:
				t.Fatalf("%s got unexpected %s", me, f.raw)
			}
		}
		i++
	}
	if i != joiners {
		t.Fatalf("%d joiners checked, want %d", i, joiners)
	}
}

func TestEveryValidMessageReachesEveryMemberSenderIncluded(t *testing.T) {
	wstest.CheckGoroutines(t)
	s := startChat(t)
	ann := s.join(t, "all", "ann")
	bob := s.join(t, "all", "bob")
	expect(t, ann, "joined", "bob", nil)
	cat := s.join(t, "all", "cat")
	expect(t, ann, "joined", "cat", nil)
	expect(t, bob, "joined", "cat", nil)
	members := []*member{ann, bob, cat}

	content := `<b>"héllo"</b> & 🎉 \ / ` + "\n\ttab"
	sendMessage(t, bob, content)
	for _, c := range members {
		expect(t, c, "message", "bob", str(content))
	}
	cat.Send(map[string]string{"type": "typing"})
	for _, c := range members {
		expect(t, c, "typing", "cat", nil)
	}
	ann.Send(map[string]string{"type": "typing", "content": "draft"})
	for _, c := range members {
		expect(t, c, "typing", "ann", str("draft"))
	}
}

func TestLeftGoesToRemainingMembersAndEmptyRoomIsRemoved(t *testing.T) {
	wstest.CheckGoroutines(t)
	s := startChat(t)
	ann := s.join(t, "bye", "ann")
	bob := s.join(t, "bye", "bob")
	expect(t, ann, "joined", "bob", nil)
	cat := s.join(t, "bye", "cat")
	expect(t, ann, "joined", "cat", nil)
	expect(t, bob, "joined", "cat", nil)
	if s.rooms.Len() != 1 || !roomListed(s.rooms, "bye") {
		t.Fatalf("rooms.Len() = %d, listed %v; want the room bye listed", s.rooms.Len(), roomListed(s.rooms, "bye"))
	}

	// A polite close: close frame 1000.
	cat.Close()
	expect(t, ann, "left", "cat", nil)
	expect(t, bob, "left", "cat", nil)

	// An abrupt one: the socket drops without a close frame.
	bob.Drop()
	expect(t, ann, "left", "bob", nil)

	// The remaining member still talks to the room.
	sendMessage(t, ann, "alone")
	expect(t, ann, "message", "ann", str("alone"))
	if s.rooms.Len() != 1 || !roomListed(s.rooms, "bye") {
		t.Fatalf("room bye gone while ann is in it: Len %d", s.rooms.Len())
	}

	ann.Close()
	wstest.WaitFor(t, "the empty room to be removed", func() bool {
		return s.rooms.Len() == 0 && !roomListed(s.rooms, "bye")
	})
	if n := s.rooms.Room("bye").Len(); n != 0 {
		t.Fatalf("removed room still has %d subscribers", n)
	}

	// The room comes back with its next member.
	dan := s.join(t, "bye", "dan")
	if s.rooms.Len() != 1 || !roomListed(s.rooms, "bye") {
		t.Fatalf("rooms.Len() = %d after a new member joined, want the room bye back", s.rooms.Len())
	}
	dan.Close()
	wstest.WaitFor(t, "the room to be removed again", func() bool { return s.rooms.Len() == 0 })
}

func TestRoomsAreIsolated(t *testing.T) {
	wstest.CheckGoroutines(t)
	s := startChat(t)
	bea := s.join(t, "b", "bea")

	// Everything happens in room a: joins, messages, typing, a leave.
	ann := s.join(t, "a", "ann")
	al := s.join(t, "a", "al")
	expect(t, ann, "joined", "al", nil)
	sendMessage(t, ann, "secret of a")
	expect(t, ann, "message", "ann", str("secret of a"))
	expect(t, al, "message", "ann", str("secret of a"))
	al.Send(map[string]string{"type": "typing"})
	expect(t, ann, "typing", "al", nil)
	expect(t, al, "typing", "al", nil)
	al.Close()
	expect(t, ann, "left", "al", nil)
	if s.rooms.Len() != 2 {
		t.Fatalf("rooms.Len() = %d, want 2 (a and b)", s.rooms.Len())
	}

	// All of a's traffic has been delivered; had any of it gone to bea, it
	// would be queued before the marker.
	sendMessage(t, bea, "marker")
	expect(t, bea, "message", "bea", str("marker"))
	sendMessage(t, ann, "after marker")
	expect(t, ann, "message", "ann", str("after marker"))
	sendMessage(t, bea, "marker 2")
	expect(t, bea, "message", "bea", str("marker 2"))
}

// ---------------------------------------------------------------------------
// Invalid input
// ---------------------------------------------------------------------------

func TestInvalidInputIsRejectedToSenderOnlyAndConnectionStaysOpen(t *testing.T) {
	wstest.CheckGoroutines(t)
	s := startChat(t)
	ann := s.join(t, "inv", "ann")
	bob := s.join(t, "inv", "bob")
	expect(t, ann, "joined", "bob", nil)

	for i, tc := range []struct {
		name, frame string
		reason      string // the reason must contain this
	}{
		{"not JSON", `hello`, "JSON"},
		{"truncated JSON", `{"type":"message"`, "JSON"},
		{"empty frame", ``, "JSON"},
		{"array", `["message"]`, "object"},
		{"string", `"message"`, "object"},
		{"number", `42`, "object"},
		{"null", `null`, "object"},
		{"type outside enum", `{"type":"shout","content":"hi"}`, "type"},
		{"type empty", `{"type":""}`, "type"},
		{"type joined (server-only)", `{"type":"joined"}`, "type"},
		{"type not a string", `{"type":1}`, "type"},
		{"type missing", `{"content":"hi"}`, "type"},
		{"content number", `{"type":"message","content":5}`, "content"},
		{"content object", `{"type":"message","content":{"text":"hi"}}`, "content"},
		{"content array", `{"type":"message","content":["hi"]}`, "content"},
		{"content bool", `{"type":"typing","content":true}`, "content"},
		{"content null", `{"type":"message","content":null}`, "content"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ann.SendText(tc.frame)
			reason := expectError(t, ann)
			if !strings.Contains(reason, tc.reason) {
				t.Errorf("reason %q for %s does not mention %q", reason, tc.frame, tc.reason)
			}
			t.Logf("%s -> %q", tc.frame, reason)
			// Later valid messages work, and bob received nothing before them.
			after := fmt.Sprintf("valid after %d", i)
			sendMessage(t, ann, after)
			expect(t, ann, "message", "ann", str(after))
			expect(t, bob, "message", "ann", str(after))
		})
	}
}

// ---------------------------------------------------------------------------
// Delivery
// ---------------------------------------------------------------------------

func TestMessagesOfOneSenderReachEveryMemberInOrderNoneLost(t *testing.T) {
	wstest.CheckGoroutines(t)
	// 3000 messages as fast as the socket takes them is a flood by the
	// default rate limit; this test is about order and loss, so lift it.
	s := startChat(t, wsroom.WithRateLimit(0, 0))
	const (
		total  = 3000
		window = 250 // below the send queue bound: a slow test host must not look like a slow consumer
	)
	ann := s.join(t, "order", "ann")
	bob := s.join(t, "order", "bob")
	expect(t, ann, "joined", "bob", nil)
	cat := s.join(t, "order", "cat")
	expect(t, ann, "joined", "cat", nil)
	expect(t, bob, "joined", "cat", nil)
	members := map[string]*member{"ann": ann, "bob": bob, "cat": cat}

	counts := map[string]int{}
	for start := 0; start < total; start += window {
		end := min(start+window, total)
		for i := start; i < end; i++ {
			sendMessage(t, bob, fmt.Sprintf("m%04d", i))
		}
		for name, c := range members {
			for i := start; i < end; i++ {
				f := next(t, c)
				if f.Type != "message" || f.Username != "bob" || f.Content == nil {
					t.Fatalf("%s: got %s, want bob's message m%04d", name, f.raw, i)
				}
				if want := fmt.Sprintf("m%04d", i); *f.Content != want {
					t.Fatalf("%s: got %q, want %q (lost or out of order)", name, *f.Content, want)
				}
				counts[name]++
			}
		}
	}
	for name, n := range counts {
		if n != total {
			t.Fatalf("%s received %d messages, want %d", name, n, total)
		}
	}
	if len(counts) != 3 {
		t.Fatalf("counted %d members, want 3", len(counts))
	}
}

// ---------------------------------------------------------------------------
// Limits and admission
// ---------------------------------------------------------------------------

// messageOfSize is a valid client message exactly n bytes long.
func messageOfSize(n int) string {
	const head, tail = `{"type":"message","content":"`, `"}`
	return head + strings.Repeat("x", n-len(head)-len(tail)) + tail
}

func TestFrameOverOneMiBClosesThatConnectionWith1009(t *testing.T) {
	wstest.CheckGoroutines(t)
	s := startChat(t)
	ann := s.joinRaw(t, "big", "ann")
	bob := s.join(t, "big", "bob")
	expect(t, ann, "joined", "bob", nil)

	// Exactly 1 MiB is still accepted and published.
	limit := messageOfSize(1 << 20)
	ann.SendText(t, limit)
	limitContent := limit[len(`{"type":"message","content":"`) : len(limit)-len(`"}`)]
	expect(t, ann, "message", "ann", &limitContent)
	expect(t, bob, "message", "ann", &limitContent)

	// One byte more closes ann's connection with 1009.
	over := messageOfSize(1<<20 + 1)
	wrote := make(chan error, 1)
	go func() { wrote <- ann.Conn().WriteString(over) }()
	ev := ann.Closed(t)
	if ev.Code != uint16(wsroom.StatusMessageTooBig) {
		t.Fatalf("ann closed with %d %q (%v), want 1009", ev.Code, ev.Reason, ev.Err)
	}
	select {
	case <-wrote: // written, or failed on the closed socket: either is fine
	case <-time.After(wstest.Timeout):
		t.Fatal("the oversized write never returned")
	}

	// bob is unaffected: told ann left, and still in a working room.
	expect(t, bob, "left", "ann", nil)
	sendMessage(t, bob, "still here")
	expect(t, bob, "message", "bob", str("still here"))
	cat := s.join(t, "big", "cat")
	expect(t, bob, "joined", "cat", nil)
	sendMessage(t, cat, "hi bob")
	expect(t, bob, "message", "cat", str("hi bob"))
}

// TestMessageOverOneMiBInFragmentsClosesWith1009: the limit is on the
// message, so splitting it into frames under 1 MiB does not get it through;
// the same message at exactly 1 MiB in fragments is published.
func TestMessageOverOneMiBInFragmentsClosesWith1009(t *testing.T) {
	wstest.CheckGoroutines(t)
	s := startChat(t)
	fragmented := func(msg string) []byte {
		half := len(msg) / 2
		return append(wstest.Frame(false, 0x1, []byte(msg[:half])), wstest.Frame(true, 0x0, []byte(msg[half:]))...)
	}
	writeRaw := func(c *wstest.Client, b []byte) <-chan error {
		wrote := make(chan error, 1)
		go func() {
			_, err := c.NetConn().Write(b)
			wrote <- err
		}()
		return wrote
	}

	ann := s.joinRaw(t, "frag", "ann")
	limit := messageOfSize(1 << 20)
	wrote := writeRaw(ann, fragmented(limit))
	content := limit[len(`{"type":"message","content":"`) : len(limit)-len(`"}`)]
	expect(t, ann, "message", "ann", &content)
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}

	wrote = writeRaw(ann, fragmented(messageOfSize(1<<20+1)))
	if ev := ann.Closed(t); ev.Code != uint16(wsroom.StatusMessageTooBig) {
		t.Fatalf("closed with %d %q (%v), want 1009", ev.Code, ev.Reason, ev.Err)
	}
	select {
	case <-wrote:
	case <-time.After(wstest.Timeout):
		t.Fatal("the oversized write never returned")
	}
	wstest.WaitFor(t, "the room to be removed", func() bool { return s.rooms.Len() == 0 })
}

func TestCrossOriginUpgradeIsRefusedWith403UnlessOriginAllowed(t *testing.T) {
	wstest.CheckGoroutines(t)
	evil := wsroomtest.WithHeader("Origin", "http://evil.example")

	t.Run("default refuses", func(t *testing.T) {
		s := startChat(t)
		wsroomtest.ExpectRefused(t, s.srv, roomPath("o", "eve", ""), http.StatusForbidden, evil)
		if s.rooms.Len() != 0 {
			t.Fatalf("refused upgrade created a room: Len %d", s.rooms.Len())
		}
		// The page's own origin (same host) is accepted.
		s.join(t, "o", "ann", wsroomtest.WithHeader("Origin", s.srv.URL))
	})

	t.Run("allowed by WithOriginPatterns", func(t *testing.T) {
		s := startChat(t, wsroom.WithOriginPatterns("evil.example"))
		s.join(t, "o", "eve", evil)
		other := wsroomtest.WithHeader("Origin", "http://other.example")
		wsroomtest.ExpectRefused(t, s.srv, roomPath("o", "oli", ""), http.StatusForbidden, other)
	})
}

func TestTokenGuardRefusesMissingOrWrongTokenWith401AndAcceptsQueryOrBearer(t *testing.T) {
	wstest.CheckGoroutines(t)
	s := startChat(t, wsroom.WithGuard(wsroom.RequireToken(sameToken("s3cret"))))
	authorization := func(v string) []wsroomtest.DialOption {
		return []wsroomtest.DialOption{wsroomtest.WithHeader("Authorization", v)}
	}

	for _, tc := range []struct {
		name  string
		extra string
		opts  []wsroomtest.DialOption
	}{
		{"no token", "", nil},
		{"wrong query token", "token=wrong", nil},
		{"empty query token", "token=", nil},
		{"token with a suffix", "token=s3cret2", nil},
		{"wrong bearer", "", authorization("Bearer wrong")},
		{"bearer without scheme", "", authorization("s3cret")},
	} {
		t.Run("refused/"+tc.name, func(t *testing.T) {
			wsroomtest.ExpectRefused(t, s.srv, roomPath("sec", "eve", tc.extra), http.StatusUnauthorized, tc.opts...)
		})
	}
	if s.rooms.Len() != 0 {
		t.Fatalf("refused upgrades created a room: Len %d", s.rooms.Len())
	}

	t.Run("accepted/query token", func(t *testing.T) {
		c := wsroomtest.Dial[map[string]string, json.RawMessage](t, s.srv, roomPath("sec", "ann", "token=s3cret"))
		expect(t, c, "joined", "ann", nil)
	})
	t.Run("accepted/bearer header", func(t *testing.T) {
		s.join(t, "sec", "bob", wsroomtest.WithBearer("s3cret"))
	})
}

// ---------------------------------------------------------------------------
// The page
// ---------------------------------------------------------------------------

func TestChatPageIsServedAtRoot(t *testing.T) {
	wstest.CheckGoroutines(t)
	s := startChat(t)
	resp, err := s.srv.Client().Get(s.srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET / status %d, want 200", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Fatalf("GET / Content-Type %q, want text/html", ct)
	}
	for _, id := range []string{"room", "join", "messages"} {
		re := regexp.MustCompile(`\sid=["']?` + id + `["'\s>]`)
		if !re.Match(body) {
			t.Errorf("page has no element with id %q", id)
		}
	}
	if !bytes.Contains(body, []byte("/chat/room/")) {
		t.Error("page does not connect to /chat/room/")
	}
}

// ---------------------------------------------------------------------------
// Signals, on the real binary
// ---------------------------------------------------------------------------

// stderrWatch collects a process's stderr and reports the URL it logs.
type stderrWatch struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	url  chan string
	sent bool
}

var listeningRE = regexp.MustCompile(`chat listening.*\burl=(http://[^\s"]+)`)

func (w *stderrWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.sent {
		if m := listeningRE.FindSubmatch(w.buf.Bytes()); m != nil {
			w.sent = true
			w.url <- string(m[1])
		}
	}
	return len(p), nil
}

func (w *stderrWatch) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
	buildDir  string
)

// chatBinary builds the chat command once per test run (go build -o into a
// temporary directory) and returns its path.
func chatBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the chat binary")
	}
	buildOnce.Do(func() {
		gobin, err := exec.LookPath("go")
		if err != nil {
			gobin = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		if buildDir, buildErr = os.MkdirTemp("", "chat-test-"); buildErr != nil {
			return
		}
		bin := filepath.Join(buildDir, "chat")
		out, err := exec.Command(gobin, "build", "-o", bin, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		builtBin = bin
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	redistest.StopShared()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// chatProcess is the chat binary running on a free port of 127.0.0.1.
type chatProcess struct {
	cmd    *exec.Cmd
	stderr *stderrWatch
	done   chan struct{} // closed once the process has exited
	err    error         // cmd.Wait's result, once done is closed
	base   string        // http://127.0.0.1:PORT, as logged
}

// startBinary starts the chat binary and waits, with a deadline, for the
// URL it logs on stderr; args are further flags. At cleanup a process still
// running is killed.
func startBinary(t *testing.T, bin string, args ...string) *chatProcess {
	t.Helper()
	p := &chatProcess{stderr: &stderrWatch{url: make(chan string, 1)}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, append([]string{"-addr", "127.0.0.1:0"}, args...)...)
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("chat stderr:\n%s", p.stderr)
		}
	})
	select {
	case p.base = <-p.stderr.url:
	case <-p.done:
		t.Fatalf("chat exited before logging its URL: %v", p.err)
	case <-time.After(wstest.Timeout):
		t.Fatal("chat did not log its URL in time")
	}
	return p
}

// exitsZeroWithin fails the test unless the process exits with status 0
// within d of since.
func (p *chatProcess) exitsZeroWithin(t *testing.T, since time.Time, d time.Duration, sig os.Signal) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(time.Until(since.Add(d))):
		t.Fatalf("chat still running %v after %v", d, sig)
	}
	if p.err != nil {
		t.Fatalf("chat ended with %q after %v, want exit status 0", p.err, sig)
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
}

// TestSignalClosesEveryWebSocketWith1001AndExitsZeroWithin5s runs the real
// binary: two clients talking, plus one that never reads (it cannot answer
// the closing handshake); on the signal the two see 1001, the process exits
// 0 within 5 s, and the silent one finds 1001 waiting once it reads.
func TestSignalClosesEveryWebSocketWith1001AndExitsZeroWithin5s(t *testing.T) {
	bin := chatBinary(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			wstest.CheckGoroutines(t)
			p := startBinary(t, bin)

			ann := wstest.Dial(t, roomURL(p.base, "lobby", "ann", ""))
			expect(t, ann, "joined", "ann", nil)
			bob := wstest.Dial(t, roomURL(p.base, "other", "bob", ""))
			expect(t, bob, "joined", "bob", nil)
			sendMessage(t, ann, "before signal")
			expect(t, ann, "message", "ann", str("before signal"))
			deaf := wstest.Dial(t, roomURL(p.base, "lobby", "deaf", ""), wstest.Options{Paused: true})
			expect(t, ann, "joined", "deaf", nil) // deaf is in: its handler runs

			if err := p.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			signalled := time.Now()
			for name, c := range map[string]*wstest.Client{"ann": ann, "bob": bob} {
				if ev := c.Closed(t); ev.Code != uint16(wsroom.StatusGoingAway) {
					t.Errorf("%s closed with %d %q (%v), want 1001", name, ev.Code, ev.Reason, ev.Err)
				}
			}
			p.exitsZeroWithin(t, signalled, 5*time.Second, sig)
			t.Logf("%v: exited 0 after %v", sig, time.Since(signalled).Round(time.Millisecond))

			deaf.Resume()
			expect(t, deaf, "joined", "deaf", nil)
			if ev := deaf.Closed(t); ev.Code != uint16(wsroom.StatusGoingAway) {
				t.Errorf("non-reading client found close %d %q (%v), want 1001", ev.Code, ev.Reason, ev.Err)
			}
		})
	}
}

// TestSignalRightAfterListeningLogExitsZero signals the binary as soon as it
// has logged "chat listening", as a supervisor or script waiting for that
// line would. The process must still shut down cleanly with status 0, which
// needs the signal handler installed before the line is logged. Repeated, as
// the window is narrow.
func TestSignalRightAfterListeningLogExitsZero(t *testing.T) {
	bin := chatBinary(t)
	for i := range 8 {
		for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
			p := startBinary(t, bin)
			if err := p.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			select {
			case <-p.done:
			case <-time.After(5 * time.Second):
				t.Fatalf("run %d: chat still running 5 s after %v", i, sig)
			}
			if p.err != nil {
				t.Fatalf("run %d: chat ended with %q when signalled with %v right after logging its URL, want exit status 0",
					i, p.err, sig)
			}
		}
	}
}
