package asyncapi_test

import (
	"encoding/json"
	"iter"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/asyncapi"
	"github.com/wsroom/wsroom/internal/asyncapitest"
	"github.com/wsroom/wsroom/internal/wstest"
	"github.com/wsroom/wsroom/wsroomtest"
)

// historyDocument describes a chat whose rooms record their messages.
func historyDocument(t *testing.T, ep asyncapi.Describer) []byte {
	t.Helper()
	doc, err := asyncapi.New(asyncapi.Info{Title: "Chat", Version: "1"},
		asyncapi.Endpoint("GET /chat/{room}", ep, asyncapi.ID("chat"), asyncapi.History(),
			asyncapi.Query("username", "The name shown to others.")))
	if err != nil {
		t.Fatal(err)
	}
	return doc.JSON()
}

func TestHistoryDocumentIsValidAsyncAPI3(t *testing.T) {
	doc := historyDocument(t, wsroom.New(idle[ClientMessage, ChatMessage]))
	asyncapitest.Validate(t, doc)
	asyncapitest.Parse(t, doc)
}

// With History the endpoint sends recorded messages and the recovery
// notice beside Out and the error reply, and its upgrade takes since and
// epoch in the query, before the parameters of Query.
func TestHistorySendsRecordedMessagesAndTheNoticeAndTakesAPosition(t *testing.T) {
	doc := decode(t, historyDocument(t, wsroom.New(idle[ClientMessage, ChatMessage])))
	want := []string{
		"#/channels/chat/messages/ChatMessage", "#/channels/chat/messages/ChatMessageRecorded",
		"#/channels/chat/messages/wsroomErrorReply", "#/channels/chat/messages/wsroomRecoveryNotice",
	}
	if got := refs(t, get(t, doc, "operations", "chatSend", "messages")); !slices.Equal(got, want) {
		t.Errorf("chatSend's messages %v, want %v", got, want)
	}
	query := get(t, doc, "channels", "chat", "bindings", "ws", "query", "properties").(map[string]any)
	if got := keysOf(query); !slices.Equal(got, []string{"epoch", "since", "username"}) {
		t.Errorf("query parameters %v", got)
	}
	if p := get(t, query, "since", "pattern"); p != "^[0-9]+$" {
		t.Errorf("since's pattern %v", p)
	}
	if got := get(t, doc, "components", "schemas", "ChatMessageRecorded", "required"); !slices.Equal(toStrings(got), []string{"seq", "epoch", "type"}) {
		t.Errorf("a recorded message requires %v, want its position and Out's own", got)
	}
	if _, ok := get(t, doc, "components", "schemas", "ChatMessage", "properties").(map[string]any)["seq"]; ok {
		t.Error("Out's own schema gained the position: an ephemeral message has none")
	}
}

// History on an Out that is no JSON object is refused: nothing of it can
// be recorded.
func TestHistoryOfANonObjectIsRefused(t *testing.T) {
	_, err := asyncapi.New(asyncapi.Info{Title: "x", Version: "1"},
		asyncapi.Endpoint("/feed", wsroom.New(idle[string, string]), asyncapi.History()))
	if err == nil {
		t.Fatal("History with Out a string: no error")
	}
}

// What a real endpoint with history sends matches the document: its
// recovery notices, recovered or not, are documented notices and no
// Out; its recorded messages are documented recorded messages, and its
// ephemeral ones plain Out.
func TestDocumentedHistoryFramesAreWhatTheEndpointSends(t *testing.T) {
	wstest.CheckGoroutines(t)
	rooms := wsroom.NewRooms[ChatMessage](wsroom.WithHistory(3, time.Minute))
	ep := wsroom.New(func(c *wsroom.Conn[ChatMessage], msgs iter.Seq2[ClientMessage, error]) error {
		room := rooms.Room("r")
		leave, err := room.Join(c, ChatMessage{Type: "joined"})
		if err != nil {
			return err
		}
		defer leave()
		for m, err := range msgs {
			if err != nil {
				return err
			}
			if m.Type == "typing" {
				err = room.PublishEphemeral(ChatMessage{Type: "typing"})
			} else {
				err = room.Publish(ChatMessage{Type: "message", Content: m.Content})
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	doc := historyDocument(t, ep)
	notice, recorded, out := compileComponent(t, doc, "wsroomRecoveryNotice"),
		compileComponent(t, doc, "ChatMessageRecorded"), compileComponent(t, doc, "ChatMessage")
	srv := wsroomtest.NewServer(t, ep)

	first := wsroomtest.Dial[ClientMessage, json.RawMessage](t, srv, "/")
	joined := first.ReceiveText()
	first.Send(ClientMessage{Type: "typing"})
	typing := first.ReceiveText()
	var pos struct {
		Seq   uint64
		Epoch string
	}
	_ = json.Unmarshal([]byte(joined), &pos)

	first.Send(ClientMessage{Type: "message"})
	first.ReceiveText()
	resume := func(since uint64) string {
		q := url.Values{wsroom.QuerySince: {strconv.FormatUint(since, 10)}, wsroom.QueryEpoch: {pos.Epoch}}
		return "/?" + q.Encode()
	}
	// Resuming after joined misses the message; then five more than the
	// history keeps are published.
	recovered := wsroomtest.Dial[ClientMessage, json.RawMessage](t, srv, resume(pos.Seq)).ReceiveText()
	for range 5 {
		first.Send(ClientMessage{Type: "message"})
	}
	lost := wsroomtest.Dial[ClientMessage, json.RawMessage](t, srv, resume(pos.Seq)).ReceiveText()

	for _, tc := range []struct {
		frame  string
		schema string
		passes map[string]bool
	}{
		{recovered, "notice", map[string]bool{"notice": true}},
		{lost, "notice", map[string]bool{"notice": true}},
		{joined, "recorded", map[string]bool{"recorded": true}},
		{typing, "out", map[string]bool{"out": true}},
	} {
		for name, s := range map[string]interface{ Validate(any) error }{"notice": notice, "recorded": recorded, "out": out} {
			err := s.Validate(unmarshal(t, tc.frame))
			if tc.passes[name] && err != nil {
				t.Errorf("%s breaks the documented %s: %v", tc.frame, name, err)
			}
			if !tc.passes[name] && err == nil {
				t.Errorf("%s passes for a %s", tc.frame, name)
			}
		}
	}
	t.Logf("recovered: %s; not recovered: %s", recovered, lost)
}
