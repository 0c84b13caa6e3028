package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsroom/wsroom/internal/wstest"
	"github.com/wsroom/wsroom/wsroomtest"
)

// parsePresence checks a presence frame against the contract: exactly the
// keys type and users; users a list (never null) of objects of exactly
// username (non-empty) and connections (≥ 1), sorted by username in byte
// order, each username once.
func parsePresence(data []byte, m map[string]json.RawMessage) (chatFrame, error) {
	f := chatFrame{raw: string(data), Type: "presence", keys: []string{"type", "users"}}
	if len(m) != 2 || m["users"] == nil {
		return f, fmt.Errorf("presence frame %s: want exactly the keys type and users", data)
	}
	users, err := parseUsers(m["users"])
	if err != nil {
		return f, fmt.Errorf("presence frame %s: %v", data, err)
	}
	f.Users = users
	return f, nil
}

// parseUsers checks a presence list: a JSON array, never null, of
// {"username":NAME,"connections":N}, NAME non-empty and unique, N ≥ 1,
// sorted by NAME in byte order.
func parseUsers(raw json.RawMessage) ([]PresentUser, error) {
	var list []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil || list == nil {
		return nil, fmt.Errorf("users %s is not a list", raw)
	}
	users := make([]PresentUser, 0, len(list))
	for _, u := range list {
		var p PresentUser
		if len(u) != 2 || json.Unmarshal(u["username"], &p.Username) != nil || json.Unmarshal(u["connections"], &p.Connections) != nil {
			return nil, fmt.Errorf("users %s: an entry is not exactly username and connections", raw)
		}
		if p.Username == "" || p.Connections < 1 {
			return nil, fmt.Errorf("users %s: empty username or connections < 1", raw)
		}
		users = append(users, p)
	}
	if !slices.IsSortedFunc(users, func(a, b PresentUser) int {
		if a.Username == b.Username {
			return 0
		}
		if a.Username < b.Username {
			return -1
		}
		return 1
	}) || len(slices.CompactFunc(slices.Clone(users), func(a, b PresentUser) bool { return a.Username == b.Username })) != len(users) {
		return nil, fmt.Errorf("users %s are not sorted by username, each once", raw)
	}
	return users, nil
}

// usersString writes users as "name:N name:N", for comparisons and
// messages.
func usersString(users []PresentUser) string {
	s := ""
	for i, u := range users {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("%s:%d", u.Username, u.Connections)
	}
	return s
}

// joinSeeing connects username to room, checks that its first frame is its
// own joined and the next a presence frame, and returns the presence as
// "name:N ..." with the connection.
func (s *chatServer) joinSeeing(t *testing.T, room, username string) (*member, string) {
	t.Helper()
	c := wsroomtest.Dial[map[string]string, json.RawMessage](t, s.srv, roomPath(room, username, ""))
	expect(t, c, "joined", username, nil)
	return c, expectPresence(t, c)
}

// expectPresence reads c's next frame, checks it is a presence frame, and
// returns its users as "name:N ...".
func expectPresence[C chatClient](t *testing.T, c C) string {
	t.Helper()
	f := frame(t, c)
	if f.Type != "presence" {
		t.Fatalf("got %s, want a presence frame", f.raw)
	}
	return usersString(f.Users)
}

// getPresence asks base for room's presence with the given token ("" for
// none; "Bearer ..." goes in the header, else in ?token=), and returns the
// status, the users as "name:N ..." and whether it said partial.
func getPresence(t *testing.T, base, room, token string) (status int, users string, partial bool) {
	t.Helper()
	u := base + "/chat/room/" + url.PathEscape(room) + "/presence"
	if token != "" && !strings.HasPrefix(token, "Bearer ") {
		u += "?token=" + url.QueryEscape(token)
	}
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(token, "Bearer ") {
		req.Header.Set("Authorization", token)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wstest.Timeout)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, "", false
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET %s: %q %s (%v)", u, resp.Header.Get("Content-Type"), body, err)
	}
	for k := range m {
		if k != "users" && k != "partial" {
			t.Fatalf("GET %s: %s has key %q", u, body, k)
		}
	}
	list, err := parseUsers(m["users"])
	if err != nil {
		t.Fatalf("GET %s: %s: %v", u, body, err)
	}
	if p, ok := m["partial"]; ok && string(p) != "true" {
		t.Fatalf("GET %s: %s: partial is there only as true", u, body)
	}
	return resp.StatusCode, usersString(list), m["partial"] != nil
}

// presenceWithin polls base's GET presence of room until it is want, for d
// at most, and returns the last one seen.
func presenceWithin(t *testing.T, base, room, want string, d time.Duration) (string, bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		_, got, _ := getPresence(t, base, room, "")
		if got == want || time.Now().After(deadline) {
			return got, got == want
		}
		time.Sleep(10 * time.Millisecond) // polling an HTTP answer, not synchronising
	}
}

// TestTwoTabsOfOneUserCountTwoThenOneThenGone: ann's two tabs are one
// user with two connections, in the joiners' presence frames and in GET
// presence; closing one leaves one, closing both leaves none.
func TestTwoTabsOfOneUserCountTwoThenOneThenGone(t *testing.T) {
	wstest.CheckGoroutines(t)
	s := startChat(t)
	tab1, who := s.joinSeeing(t, "tabs", "ann")
	if who != "ann:1" {
		t.Fatalf("ann's first tab sees %q, want ann:1", who)
	}
	tab2, who := s.joinSeeing(t, "tabs", "ann")
	if who != "ann:2" {
		t.Fatalf("ann's second tab sees %q, want ann:2", who)
	}
	expect(t, tab1, "joined", "ann", nil)
	bob, who := s.joinSeeing(t, "tabs", "bob")
	if who != "ann:2 bob:1" {
		t.Fatalf("bob sees %q, want ann:2 bob:1", who)
	}
	if _, got, _ := getPresence(t, s.srv.URL, "tabs", ""); got != "ann:2 bob:1" {
		t.Fatalf("GET presence %q, want ann:2 bob:1", got)
	}
	tab1.Close()
	expect(t, bob, "left", "ann", nil)
	if _, got, _ := getPresence(t, s.srv.URL, "tabs", ""); got != "ann:1 bob:1" {
		t.Fatalf("GET presence %q after a tab closed, want ann:1 bob:1", got)
	}
	tab2.Close()
	expect(t, bob, "left", "ann", nil)
	if _, got, _ := getPresence(t, s.srv.URL, "tabs", ""); got != "bob:1" {
		t.Fatalf("GET presence %q after both tabs closed, want bob:1", got)
	}
	if _, who := s.joinSeeing(t, "tabs", "cat"); who != "bob:1 cat:1" {
		t.Fatalf("cat sees %q, want bob:1 cat:1", who)
	}
}

// TestPresenceIsSortedByUsernameInByteOrder: "B" < "a" < "ä" in bytes.
func TestPresenceIsSortedByUsernameInByteOrder(t *testing.T) {
	wstest.CheckGoroutines(t)
	s := startChat(t)
	for _, u := range []string{"ä", "a", "B"} {
		s.joinSeeing(t, "order", u)
	}
	if _, who := s.joinSeeing(t, "order", "Z"); who != "B:1 Z:1 a:1 ä:1" {
		t.Fatalf("presence %q, want B:1 Z:1 a:1 ä:1", who)
	}
}

// TestPresenceFrameFollowsTheRecoveryReplayAndTheOwnJoined: a member that
// reconnects with its position is sent the notice, what it missed, its own
// joined, then the presence frame.
func TestPresenceFrameFollowsTheRecoveryReplayAndTheOwnJoined(t *testing.T) {
	wstest.CheckGoroutines(t)
	s := startChat(t)
	w, _ := s.joinSeeing(t, "back", "w")
	m, _ := s.joinSeeing(t, "back", "m")
	expect(t, w, "joined", "m", nil)
	sendMessage(t, w, "seen")
	last := expect(t, m, "message", "w", str("seen"))
	expect(t, w, "message", "w", str("seen"))
	m.Close()
	missed := []chatFrame{expect(t, w, "left", "m", nil)}
	sendMessage(t, w, "while away")
	missed = append(missed, expect(t, w, "message", "w", str("while away")))

	back := s.rejoin(t, "back", "m", last)
	expectRecovery(t, back, true, last.Epoch, len(missed))
	for i, want := range missed {
		if got := frame(t, back); got.raw != want.raw {
			t.Fatalf("replayed event %d: got %s, want %s", i, got.raw, want.raw)
		}
	}
	expect(t, back, "joined", "m", nil)
	if who := expectPresence(t, back); who != "m:1 w:1" {
		t.Fatalf("after the recovery, presence %q, want m:1 w:1", who)
	}
}

// TestGetPresenceAnswersUsersAndAnEmptyListForAnUnknownRoom.
func TestGetPresenceAnswersUsersAndAnEmptyListForAnUnknownRoom(t *testing.T) {
	wstest.CheckGoroutines(t)
	s := startChat(t)
	s.joinSeeing(t, "known", "ann")
	for room, want := range map[string]string{"known": "ann:1", "unknown": "", "with space/and slash": ""} {
		status, got, partial := getPresence(t, s.srv.URL, room, "")
		if status != http.StatusOK || got != want || partial {
			t.Errorf("GET presence of %q: %d %q partial %v, want 200 %q", room, status, got, partial, want)
		}
	}
	if s.rooms.Len() != 1 {
		t.Fatalf("GET presence created rooms: Len %d", s.rooms.Len())
	}
}

// TestGetPresenceWithTokenNeedsItAsTheUpgradeDoes: with -token, the
// bearer header or ?token= (200), nothing else (401).
func TestGetPresenceWithTokenNeedsItAsTheUpgradeDoes(t *testing.T) {
	wstest.CheckGoroutines(t)
	bin := chatBinary(t)
	p := startBinary(t, bin, "-token", "s3cret")
	c := wstest.Dial(t, roomURL(p.base, "sec", "ann", "token=s3cret"))
	expect(t, c, "joined", "ann", nil)
	for token, want := range map[string]int{
		"": 401, "wrong": 401, "s3cret2": 401, "Bearer wrong": 401, "Bearer ": 401,
		"s3cret": 200, "Bearer s3cret": 200,
	} {
		if status, got, _ := getPresence(t, p.base, "sec", token); status != want || (want == 200 && got != "ann:1") {
			t.Errorf("GET presence with token %q: %d %q, want %d", token, status, got, want)
		}
	}
	c.Close()
}

// TestConcurrentJoinsAndLeavesKeepEveryViewTrue: 16 users join and leave
// twice each, at once, some with two tabs, while ann stays: every joiner's
// presence lists it, and ann's view (its presence frame, then the joined
// and left it receives) ends as GET presence does, ann alone.
func TestConcurrentJoinsAndLeavesKeepEveryViewTrue(t *testing.T) {
	wstest.CheckGoroutines(t)
	s := startChat(t)
	ann, _ := s.joinSeeing(t, "busy", "ann")
	const users, rounds = 16, 2
	errs := make(chan error, users*rounds*2)
	var wg sync.WaitGroup
	for i := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("u%02d", i%12) // u00..u03 have two tabs at times
			for range rounds {
				c, _, err := wstest.TryDial(roomURL(s.srv.URL, "busy", name, ""))
				if err != nil {
					errs <- err
					return
				}
				if f, err := parseChat(within(c)); err != nil || f.Type != "joined" || f.Username != name {
					errs <- fmt.Errorf("%s's first frame %s (%v)", name, f.raw, err)
				} else if f, err := parseChat(within(c)); err != nil || f.Type != "presence" ||
					!slices.ContainsFunc(f.Users, func(u PresentUser) bool { return u.Username == name }) ||
					!slices.ContainsFunc(f.Users, func(u PresentUser) bool { return u.Username == "ann" }) {
					errs <- fmt.Errorf("%s's presence %s (%v) lacks it or ann", name, f.raw, err)
				}
				c.Close()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	counts := map[string]int{"ann": 1}
	for joins, lefts := 0, 0; joins < users*rounds || lefts < users*rounds; {
		switch f := next(t, ann); f.Type {
		case "joined":
			counts[f.Username]++
			joins++
		case "left":
			counts[f.Username]--
			lefts++
		default:
			t.Fatalf("ann got %s", f.raw)
		}
	}
	for u, n := range counts {
		if n != 0 && u != "ann" {
			t.Errorf("ann's view ends with %s:%d", u, n)
		}
	}
	if _, got, _ := getPresence(t, s.srv.URL, "busy", ""); got != "ann:1" {
		t.Fatalf("GET presence %q, want ann:1", got)
	}
}

// within returns c's next data message, or nil if none comes within
// wstest.Timeout (parseChat then fails): for goroutines, which must not
// call t.Fatal.
func within(c *wstest.Client) []byte {
	ev, ok := c.NextWithin(wstest.Timeout)
	if !ok || ev.Closed {
		return nil
	}
	return ev.Data
}
