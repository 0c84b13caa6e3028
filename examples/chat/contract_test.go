package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/asyncapitest"
	"github.com/wsroom/wsroom/internal/wstest"
)

// TestAsyncAPIDocumentIsServedAndValid fetches /asyncapi.json from the
// running chat and checks it against the AsyncAPI 3.0.0 JSON Schema and
// with @asyncapi/parser.
func TestAsyncAPIDocumentIsServedAndValid(t *testing.T) {
	wstest.CheckGoroutines(t)
	s := startChat(t)
	resp, err := s.srv.Client().Get(s.srv.URL + "/asyncapi.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /asyncapi.json: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	asyncapitest.Validate(t, doc)
	asyncapitest.Parse(t, doc)

	var d struct {
		Channels map[string]struct {
			Address string
		}
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatal(err)
	}
	if got := d.Channels["chatRoom"].Address; got != "/chat/room/{roomId}" {
		t.Fatalf("channel chatRoom at %q, want /chat/room/{roomId}", got)
	}
	// The chat records its events: the document says how to resume. Its
	// messages' schema has the presence frame: the type and its users.
	for _, want := range []string{`"wsroomRecoveryNotice"`, `"since"`, `"epoch"`, `"presence"`, `"users"`, `"connections"`} {
		if !bytes.Contains(doc, []byte(want)) {
			t.Errorf("the document has no %s", want)
		}
	}
}

// TestAsyncAPIDocumentHasTheTokenSecurityOnlyWithToken: with -token, both
// operations require the bearer header or the token query parameter.
func TestAsyncAPIDocumentHasTheTokenSecurityOnlyWithToken(t *testing.T) {
	ep := wsroom.New(chat(wsroom.NewRooms[ChatMessage]()))
	for _, token := range []bool{false, true} {
		doc, err := contract(ep, token)
		if err != nil {
			t.Fatal(err)
		}
		asyncapitest.Validate(t, doc.JSON())
		var d struct {
			Operations map[string]struct{ Security []map[string]string }
		}
		if err := json.Unmarshal(doc.JSON(), &d); err != nil {
			t.Fatal(err)
		}
		for _, op := range []string{"chatRoomReceive", "chatRoomSend"} {
			if n := len(d.Operations[op].Security); (n == 2) != token {
				t.Errorf("token %v: %s has %d security schemes", token, op, n)
			}
		}
	}
}
